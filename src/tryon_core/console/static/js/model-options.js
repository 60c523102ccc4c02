// The playground's per-model options. The server renders, for each model that declares options,
// a fieldset of controls made from the model's JSON Schema (hidden and disabled). This shows the
// chosen model's, keeps what the person set in the form's hidden `options` field (JSON: only the
// options set, each with its declared type), and shows an option the gateway refused (422
// invalid_option, `param` "options.NAME") beside its field. It writes with textContent only.

const form = document.getElementById("play-form");
const model = document.getElementById("play-model");
const chosen = document.getElementById("play-options");
const note = document.getElementById("options-note");
const sets = Array.from(form.querySelectorAll("fieldset.options"));

function currentSet() {
  return sets.find((set) => set.dataset.model === model.value) ?? null;
}

function controlsOf(set) {
  return set ? Array.from(set.querySelectorAll("[data-option]")) : [];
}

function valueOf(control) {
  switch (control.dataset.kind) {
    case "choice": // each choice's value is the option's value as JSON text
    case "json":
      return JSON.parse(control.value);
    case "number":
    case "integer":
      return control.valueAsNumber;
    default:
      return control.value;
  }
}

// The options set in the chosen model's fieldset, as the hidden field's JSON ("" when none). A
// field that does not hold a JSON value is marked invalid, so the browser stops the submission.
function collect() {
  const options = {};
  for (const control of controlsOf(currentSet())) {
    control.setCustomValidity("");
    if (control.value === "") continue;
    try {
      options[control.dataset.option] = valueOf(control);
    } catch {
      control.setCustomValidity('Enter a JSON value, such as 3, "text" or [1, 2].');
    }
  }
  chosen.value = Object.keys(options).length ? JSON.stringify(options) : "";
}

function clearError(control) {
  control.removeAttribute("aria-invalid");
  const slot = document.getElementById(`${control.id}-error`);
  if (slot) {
    slot.textContent = "";
    slot.hidden = true;
  }
}

function clearErrors() {
  for (const slot of form.querySelectorAll("fieldset.options .field-error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const control of form.querySelectorAll("[data-option][aria-invalid]")) {
    control.removeAttribute("aria-invalid");
  }
}

function show() {
  const set = currentSet();
  for (const each of sets) {
    each.hidden = each !== set;
    each.disabled = each !== set; // a hidden model's fields are neither checked nor sent
  }
  if (set) note.textContent = "Only the options you set are sent; the rest keep the model's defaults.";
  else if (model.value === "auto") note.textContent = "Options belong to a model: choose one above to set its own.";
  else note.textContent = `${model.value} takes no options.`;
  clearErrors();
  collect();
}

// A refusal of the options (param "options.NAME", or "options" for the whole set): beside the
// field it names, or at the end of the model's options when no field of the page matches.
function refused(error) {
  const set = currentSet();
  const param = error?.param ?? "";
  if (!set || !(param === "options" || param.startsWith("options."))) return;
  const name = param.slice("options.".length);
  const control = controlsOf(set).find((each) => each.dataset.option === name);
  const slot = control
    ? document.getElementById(`${control.id}-error`)
    : set.querySelector('.field-error[data-for=""]');
  slot.textContent = error.message;
  slot.hidden = false;
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
  }
}

function edited(event) {
  if (!event.target.matches("[data-option]")) return;
  clearError(event.target);
  collect();
}

model.addEventListener("change", show);
form.addEventListener("input", edited);
form.addEventListener("change", edited);
form.addEventListener("submit", clearErrors);
form.addEventListener("playground:refused", (event) => refused(event.detail));
show();
