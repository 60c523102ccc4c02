// Copy buttons: <button data-copy="INPUT_ID"> copies that input's value to the clipboard and
// says so in the element marked data-copy-status="INPUT_ID".

function say(id, text) {
  const status = document.querySelector(`[data-copy-status="${CSS.escape(id)}"]`);
  if (status) status.textContent = text;
}

async function copy(button) {
  const id = button.dataset.copy;
  const field = document.getElementById(id);
  if (!field) return;
  try {
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
    say(id, "Copied to the clipboard.");
  } catch {
    field.select(); // the clipboard is not available (plain http on another host): select it
    say(id, "Select and copy it yourself (Ctrl+C or ⌘C): the browser refused the clipboard.");
  }
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", () => copy(button));
}
