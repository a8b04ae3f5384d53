// The process owners' modeler: bpmn-js (from npm, loaded as its ready-built bundle, global
// BpmnJS) with the version's diagram, and a side panel of our own for the selected element: its
// name, its lane, a user task's form and a service task's handler with its parameters. Every
// edit goes through bpmn-js's command stack (so Ctrl+Z undoes it) and through its moddle with the
// descriptor below, so the saved XML has exactly the spiffworkflow elements the engine reads.
// "Save as draft" posts the XML; the server checks it like an upload and answers with the new
// draft or with the findings. The page's words come from data-strings (translated there).
(function () {
  "use strict";

  const root = document.getElementById("modeler");
  if (!root) return;
  const strings = JSON.parse(root.dataset.strings);
  const data = JSON.parse(document.getElementById("modeler-data").textContent);
  const FORM_PROPERTY = "formJsonSchemaFilename";

  // The spiffworkflow extension elements, as SpiffWorkflow and complaintflow read them.
  const SPIFFWORKFLOW = {
    name: "SpiffWorkflow",
    uri: "http://spiffworkflow.org/bpmn/schema/1.0/core",
    prefix: "spiffworkflow",
    xml: { tagAlias: "lowerCase" },
    associations: [],
    types: [
      {
        name: "Properties",
        superClass: ["Element"],
        properties: [{ name: "properties", type: "Property", isMany: true }],
      },
      {
        name: "Property",
        superClass: ["Element"],
        properties: [
          { name: "name", type: "String", isAttr: true },
          { name: "value", type: "String", isAttr: true },
        ],
      },
      {
        name: "ServiceTaskOperator",
        superClass: ["Element"],
        properties: [
          { name: "id", type: "String", isAttr: true },
          { name: "resultVariable", type: "String", isAttr: true },
          { name: "parameters", type: "Parameters" },
        ],
      },
      {
        name: "Parameters",
        superClass: ["Element"],
        properties: [{ name: "parameters", type: "Parameter", isMany: true }],
      },
      {
        name: "Parameter",
        superClass: ["Element"],
        properties: [
          { name: "id", type: "String", isAttr: true },
          { name: "type", type: "String", isAttr: true },
          { name: "value", type: "String", isAttr: true },
        ],
      },
    ],
  };

  const $ = (id) => document.getElementById(id);
  const fill = (template, values) =>
    template.replace(/\{(\w+)\}/g, (all, key) => (key in values ? String(values[key]) : all));
  const handlers = new Map(data.handlers.map((h) => [h.name, h]));

  const ui = {
    picker: $("element-picker"),
    empty: $("panel-empty"),
    form: $("element-form"),
    kind: $("el-kind"),
    name: $("el-name"),
    laneField: $("lane-field"),
    lane: $("el-lane"),
    laneMove: $("lane-move"),
    laneTarget: $("el-lane-target"),
    laneButton: $("el-lane-move"),
    userTask: $("user-task-fields"),
    formChoice: $("el-form-choice"),
    formPath: $("el-form"),
    serviceTask: $("service-task-fields"),
    handler: $("el-handler"),
    handlerSummary: $("el-handler-summary"),
    params: $("el-params"),
    save: $("save-draft"),
    status: $("save-status"),
    result: $("save-result"),
    findings: $("findings"),
  };

  function option(value, text, selected) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    if (selected) o.selected = true;
    return o;
  }

  if (typeof window.BpmnJS !== "function") {
    showProblem(fill(strings.load_failed, { reason: "bpmn-js" }));
    return;
  }

  const modeler = new window.BpmnJS({
    container: "#modeler-canvas",
    moddleExtensions: { spiffworkflow: SPIFFWORKFLOW },
  });
  const modeling = modeler.get("modeling");
  const moddle = modeler.get("moddle");
  const registry = modeler.get("elementRegistry");
  const selection = modeler.get("selection");
  const canvas = modeler.get("canvas");
  const commandStack = modeler.get("commandStack");
  const eventBus = modeler.get("eventBus");

  // One panel edit, however many model changes it takes, is one step of undo.
  commandStack.registerHandler("complaintflow.edit", function EditHandler() {
    this.preExecute = (context) => context.run();
    this.execute = () => [];
    this.revert = () => [];
  });
  const batch = (run) => commandStack.execute("complaintflow.edit", { run });

  let current = null; // the element the panel shows
  let shownHandler = null; // the handler whose parameter inputs are built
  let dirty = false;

  // -------------------------------------------------------------- reading the model

  const bo = (element) => element.businessObject;
  const isA = (element, type) => bo(element).$instanceOf(type);
  const extensions = (element) => {
    const ext = bo(element).extensionElements;
    return ext ? ext.get("values") : [];
  };
  const find = (list, type) => list.find((v) => v.$instanceOf && v.$instanceOf(type));
  const operator = (element) => find(extensions(element), "spiffworkflow:ServiceTaskOperator");

  function formPath(element) {
    const props = find(extensions(element), "spiffworkflow:Properties");
    const prop = props && props.get("properties").find((p) => p.name === FORM_PROPERTY);
    return (prop && prop.value) || "";
  }

  function parameters(element) {
    const op = operator(element);
    return op && op.parameters ? op.parameters.get("parameters") : [];
  }

  function lanes() {
    return registry.filter((e) => e.type === "bpmn:Lane");
  }

  function laneOf(element) {
    const found = lanes().filter((lane) =>
      (bo(lane).get("flowNodeRef") || []).includes(bo(element)),
    );
    return found.length ? found[found.length - 1] : null; // nested lanes: the innermost
  }

  const laneLabel = (lane) => (bo(lane).name ? `${bo(lane).name} (${lane.id})` : lane.id);

  function editable(element) {
    return (
      element &&
      element.type !== "label" &&
      isA(element, "bpmn:FlowNode") &&
      !isA(element, "bpmn:SubProcess")
    );
  }

  function typeName(element) {
    const exact = bo(element).$type;
    if (strings.types[exact]) return strings.types[exact];
    const known = Object.keys(strings.types).find((type) => isA(element, type));
    return known ? strings.types[known] : element.type.replace(/^bpmn:/, "");
  }

  // -------------------------------------------------------------- writing the model

  function extensionElements(element) {
    let ext = bo(element).extensionElements;
    if (!ext) {
      ext = moddle.create("bpmn:ExtensionElements", { values: [] });
      ext.$parent = bo(element);
      modeling.updateProperties(element, { extensionElements: ext });
    }
    return ext;
  }

  function child(element, ext, type, attrs) {
    let found = find(ext.get("values"), type);
    if (!found) {
      found = moddle.create(type, attrs);
      found.$parent = ext;
      modeling.updateModdleProperties(element, ext, { values: [...ext.get("values"), found] });
    }
    return found;
  }

  function setFormPath(element, path) {
    batch(() => {
      const ext = extensionElements(element);
      const props = child(element, ext, "spiffworkflow:Properties", {});
      const prop = props.get("properties").find((p) => p.name === FORM_PROPERTY);
      if (prop) {
        modeling.updateModdleProperties(element, prop, { value: path });
      } else {
        const made = moddle.create("spiffworkflow:Property", { name: FORM_PROPERTY, value: path });
        made.$parent = props;
        modeling.updateModdleProperties(element, props, {
          properties: [...props.get("properties"), made],
        });
      }
    });
  }

  function makeParameter(parent, name, type, value) {
    const made = moddle.create("spiffworkflow:Parameter", { id: name, type, value });
    made.$parent = parent;
    return made;
  }

  function setHandler(element, name) {
    const handler = handlers.get(name);
    if (!handler) return;
    batch(() => {
      const ext = extensionElements(element);
      const op = child(element, ext, "spiffworkflow:ServiceTaskOperator", { id: name });
      // A parameter of the same name keeps its value; the others start empty (required) or
      // are left out (optional).
      const before = new Map(parameters(element).map((p) => [p.id, p.value || ""]));
      const list = moddle.create("spiffworkflow:Parameters", { parameters: [] });
      list.$parent = op;
      list.set(
        "parameters",
        handler.params
          .filter((p) => p.required || before.get(p.name))
          .map((p) => makeParameter(list, p.name, p.type, before.get(p.name) || "")),
      );
      modeling.updateModdleProperties(element, op, { id: name, parameters: list });
    });
  }

  function setParameter(element, name, value) {
    const op = operator(element);
    if (!op) return;
    const declared = (handlers.get(op.id) || { params: [] }).params.find((p) => p.name === name);
    batch(() => {
      let list = op.parameters;
      if (!list) {
        list = moddle.create("spiffworkflow:Parameters", { parameters: [] });
        list.$parent = op;
        modeling.updateModdleProperties(element, op, { parameters: list });
      }
      const all = list.get("parameters");
      const existing = all.find((p) => p.id === name);
      if (existing && !value && !(declared && declared.required)) {
        modeling.updateModdleProperties(element, list, {
          parameters: all.filter((p) => p !== existing),
        });
      } else if (existing) {
        modeling.updateModdleProperties(element, existing, { value });
      } else if (value) {
        const type = declared ? declared.type : "str";
        modeling.updateModdleProperties(element, list, {
          parameters: [...all, makeParameter(list, name, type, value)],
        });
      }
    });
  }

  function moveIntoLane(element, lane) {
    const middle = element.y + element.height / 2;
    const target = lane.y + lane.height / 2;
    if (Math.abs(target - middle) < 1) return;
    modeling.moveElements([element], { x: 0, y: Math.round(target - middle) });
  }

  // -------------------------------------------------------------- the panel

  function fillPicker() {
    const nodes = registry.filter(editable);
    nodes.sort((a, b) => a.y - b.y || a.x - b.x);
    ui.picker.replaceChildren(option("", strings.choose, !current));
    for (const node of nodes) {
      const name = bo(node).name || strings.unnamed;
      ui.picker.append(
        option(node.id, `${name} — ${typeName(node)} (${node.id})`, node === current),
      );
    }
  }

  function fillFormChoice(path) {
    ui.formChoice.replaceChildren(option("", strings.choose, !path));
    for (const form of data.forms) ui.formChoice.append(option(form, form, form === path));
    const other = option("*", strings.other_form, Boolean(path) && !data.forms.includes(path));
    ui.formChoice.append(other);
  }

  function fillHandlerChoice(name) {
    ui.handler.replaceChildren();
    if (!handlers.has(name)) ui.handler.append(option("", name || strings.choose, true));
    for (const h of data.handlers) ui.handler.append(option(h.name, h.name, h.name === name));
  }

  function buildParameters(element, handler) {
    ui.params.replaceChildren();
    const declared = handler ? handler.params : [];
    const names = declared.map((p) => p.name);
    const extra = parameters(element)
      .map((p) => p.id)
      .filter((name) => !names.includes(name));
    for (const p of [...declared, ...extra.map((name) => ({ name, extra: true }))]) {
      const id = `param-${p.name}`;
      const box = document.createElement("div");
      box.className = "field";
      const label = document.createElement("label");
      label.htmlFor = id;
      label.append(p.name + " ");
      const mark = document.createElement("span");
      mark.className = p.required ? "req" : "muted";
      mark.textContent = p.extra ? "" : p.required ? `* ${strings.required}` : strings.optional;
      label.append(mark);
      const input = document.createElement("input");
      input.type = "text";
      input.id = id;
      input.dataset.param = p.name;
      input.autocomplete = "off";
      input.spellcheck = false;
      if (p.required) input.setAttribute("aria-required", "true");
      const help = document.createElement("p");
      help.className = "help";
      help.id = `${id}-help`;
      help.textContent = p.extra ? strings.not_taken : `${p.type} · ${p.description}`;
      input.setAttribute("aria-describedby", help.id);
      input.addEventListener("change", () => {
        if (current) setParameter(current, p.name, input.value.trim());
      });
      box.append(label, input, help);
      ui.params.append(box);
    }
  }

  const setValue = (input, value) => {
    if (document.activeElement !== input && input.value !== value) input.value = value;
  };

  function render() {
    const element = current;
    ui.picker.value = element ? element.id : "";
    if (!element) {
      ui.form.hidden = true;
      ui.empty.hidden = false;
      shownHandler = null;
      return;
    }
    ui.form.hidden = false;
    ui.empty.hidden = true;
    ui.kind.textContent = `${typeName(element)} · ${element.id}`;
    setValue(ui.name, bo(element).name || "");

    const lane = laneOf(element);
    ui.lane.textContent = lane ? laneLabel(lane) : strings.no_lane;
    const movable = !isA(element, "bpmn:BoundaryEvent") && lanes().length > 1;
    ui.laneMove.hidden = !movable;
    if (movable) {
      ui.laneTarget.replaceChildren(
        ...lanes().map((l) => option(l.id, laneLabel(l), l === lane)),
      );
    }

    ui.userTask.hidden = !isA(element, "bpmn:UserTask");
    if (!ui.userTask.hidden) {
      const path = formPath(element);
      fillFormChoice(path);
      setValue(ui.formPath, path);
    }

    ui.serviceTask.hidden = !isA(element, "bpmn:ServiceTask");
    if (!ui.serviceTask.hidden) {
      const op = operator(element);
      const name = op ? op.id || "" : "";
      const handler = handlers.get(name);
      fillHandlerChoice(name);
      ui.handlerSummary.textContent = handler ? handler.summary : "";
      // Rebuilt when the element, its handler or its undeclared parameters change, not while
      // a value is typed (that would take the focus away).
      const declared = handler ? handler.params.map((p) => p.name) : [];
      const extra = parameters(element)
        .map((p) => p.id)
        .filter((id) => !declared.includes(id));
      const key = `${element.id}\u0000${name}\u0000${extra}`;
      if (shownHandler !== key) {
        buildParameters(element, handler);
        shownHandler = key;
      }
      const values = new Map(parameters(element).map((p) => [p.id, p.value || ""]));
      for (const input of ui.params.querySelectorAll("input[data-param]")) {
        setValue(input, values.get(input.dataset.param) || "");
      }
    } else {
      shownHandler = null;
    }
  }

  function show(element) {
    const target = element && element.labelTarget ? element.labelTarget : element;
    current = editable(target) ? target : null;
    render();
  }

  // -------------------------------------------------------------- events

  ui.picker.addEventListener("change", () => {
    const element = registry.get(ui.picker.value);
    if (element) {
      selection.select(element);
      if (canvas.zoom() < 0.8) canvas.zoom(1);
      canvas.scrollToElement(element, { top: 80, bottom: 80, left: 80, right: 80 });
    } else {
      selection.select(null);
    }
  });

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in a field: its change event has applied it
  });

  ui.name.addEventListener("change", () => {
    if (current) modeling.updateLabel(current, ui.name.value.trim());
  });

  ui.laneButton.addEventListener("click", () => {
    const lane = registry.get(ui.laneTarget.value);
    if (current && lane) moveIntoLane(current, lane);
  });

  ui.formChoice.addEventListener("change", () => {
    const value = ui.formChoice.value;
    if (value === "*") {
      ui.formPath.focus();
      return;
    }
    ui.formPath.value = value;
    if (current) setFormPath(current, value);
  });

  ui.formPath.addEventListener("change", () => {
    if (current) setFormPath(current, ui.formPath.value.trim());
  });

  ui.handler.addEventListener("change", () => {
    if (current && ui.handler.value) setHandler(current, ui.handler.value);
  });

  eventBus.on("selection.changed", (event) => {
    const chosen = event.newSelection;
    show(chosen.length === 1 ? chosen[0] : null);
  });

  eventBus.on("commandStack.changed", () => {
    if (current && !registry.get(current.id)) current = null; // deleted, or its id changed
    dirty = commandStack.canUndo();
    ui.status.textContent = dirty ? strings.unsaved : "";
    fillPicker();
    render();
  });

  window.addEventListener("beforeunload", (event) => {
    if (dirty) {
      event.preventDefault();
      event.returnValue = strings.leave;
    }
  });

  // -------------------------------------------------------------- saving

  function showProblem(message) {
    ui.result.replaceChildren();
    const p = document.createElement("p");
    p.className = "flash error";
    p.textContent = message;
    ui.result.append(p);
  }

  function showFindings(findings) {
    const list = ui.findings.querySelector("ul");
    list.replaceChildren(
      ...findings.map((text) => {
        const li = document.createElement("li");
        li.textContent = text;
        return li;
      }),
    );
    ui.findings.hidden = findings.length === 0;
  }

  async function save() {
    // A field being typed in has not sent its change yet.
    if (ui.form.contains(document.activeElement)) document.activeElement.blur();
    ui.save.disabled = true;
    ui.status.textContent = strings.saving;
    ui.result.replaceChildren();
    showFindings([]);
    try {
      const { xml } = await modeler.saveXML({ format: true });
      const response = await fetch(data.save, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": root.dataset.csrf,
        },
        body: JSON.stringify({ bpmn: xml }),
      });
      const type = response.headers.get("Content-Type") || "";
      const answer = type.includes("json") ? await response.json() : {};
      if (response.status === 422 && Array.isArray(answer.findings)) {
        ui.status.textContent = dirty ? strings.unsaved : "";
        showFindings(answer.findings);
        ui.findings.querySelector("h3").scrollIntoView({ block: "nearest" });
        return;
      }
      if (!response.ok || typeof answer.version !== "number") {
        const reason = (answer.error && answer.error.message) || `HTTP ${response.status}`;
        ui.status.textContent = dirty ? strings.unsaved : "";
        showProblem(fill(strings.failed, { reason }));
        return;
      }
      dirty = false;
      ui.status.textContent = "";
      const message = document.createElement("p");
      message.className = "flash success";
      message.textContent = fill(answer.created ? strings.saved : strings.unchanged, {
        n: answer.version,
      }) + " ";
      const link = document.createElement("a");
      link.href = answer.url;
      link.className = "draft-link";
      link.textContent = fill(strings.open, { n: answer.version });
      message.append(link);
      ui.result.replaceChildren(message);
      link.focus();
    } catch (error) {
      ui.status.textContent = dirty ? strings.unsaved : "";
      showProblem(fill(strings.failed, { reason: error.message || String(error) }));
    } finally {
      ui.save.disabled = false;
    }
  }

  ui.save.addEventListener("click", save);

  // -------------------------------------------------------------- start

  modeler
    .importXML(data.xml)
    .then(() => {
      canvas.zoom("fit-viewport");
      fillPicker();
      render();
      root.dataset.ready = "true"; // for people reading the page's state, and for the tests
    })
    .catch((error) => {
      showProblem(fill(strings.load_failed, { reason: error.message || String(error) }));
    });
})();
