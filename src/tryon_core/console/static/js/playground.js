// The playground: send the photos as an async job, follow it on its WebSocket (or by polling
// when that cannot open), then show the result beside the person photo.
// Everything the page writes goes through textContent: nothing the server says is HTML.

const form = document.getElementById("play-form");
const $ = (id) => document.getElementById(id);
const TERMINAL = new Set(["completed", "failed"]);
const POLL_MS = 2000;

const ui = {
  run: $("play-run"),
  idle: $("run-idle"),
  live: $("run-live"),
  link: $("job-link"),
  state: $("job-state"),
  log: $("job-log"),
  error: $("job-error"),
  result: $("result"),
  before: $("before-image"),
  after: $("result-image"),
  model: $("result-model"),
  cost: $("job-cost"),
  attempts: $("result-attempts"),
};

let objectUrls = [];

function show(element, visible) {
  element.classList.toggle("hidden", !visible);
}

function source(role) {
  return form.elements[`${role}_source`].value; // "sample" or "upload"
}

function previewImage(src, alt) {
  const img = document.createElement("img");
  img.className = "preview";
  img.src = src;
  img.alt = alt;
  return img;
}

function refreshPreviews() {
  for (const url of objectUrls) URL.revokeObjectURL(url);
  objectUrls = [];
  const personUpload = source("person") === "upload";
  const garmentUpload = source("garment") === "upload";
  show(form.querySelector('[data-source="person-upload"]'), personUpload);
  show(form.querySelector('[data-source="garment-upload"]'), garmentUpload);

  const personPreview = $("person-preview");
  const personFile = $("person-file").files[0];
  if (personUpload && personFile) {
    const url = URL.createObjectURL(personFile);
    objectUrls.push(url);
    personPreview.src = url;
  } else {
    personPreview.src = personPreview.dataset.sampleSrc;
  }
  show(personPreview, !personUpload || Boolean(personFile));

  const previews = $("garment-previews");
  previews.replaceChildren();
  if (garmentUpload) {
    for (const file of garmentFiles()) {
      const url = URL.createObjectURL(file);
      objectUrls.push(url);
      previews.append(previewImage(url, `Garment: ${file.name}`));
    }
  } else {
    previews.append(previewImage(previews.dataset.sampleSrc, "The garment to put on"));
  }
}

function garmentFiles() {
  const input = $("garment-files");
  return Array.from(input.files).slice(0, Number(input.dataset.max || 1));
}

function formData() {
  const data = new FormData();
  if (source("person") === "upload") {
    const file = $("person-file").files[0];
    if (!file) throw new Error("Choose a person photo file to upload, or use the sample person.");
    data.append("person_image", file);
  } else {
    data.append("person_sample", form.elements.person_sample.value);
  }
  if (source("garment") === "upload") {
    const files = garmentFiles();
    if (!files.length) throw new Error("Choose a garment photo file to upload, or use the sample.");
    for (const file of files) data.append("garment_images", file);
  } else {
    data.append("garment_sample", form.elements.garment_sample.value);
  }
  data.append("model", form.elements.model.value);
  data.append("category", form.elements.category.value);
  const options = $("play-options").value; // the options set, as JSON (model-options.js)
  if (options) data.append("options", options);
  return data;
}

function reset() {
  ui.log.replaceChildren();
  ui.error.textContent = "";
  show(ui.error, false);
  show(ui.result, false);
  show(ui.idle, false);
  show(ui.live, true);
  ui.after.removeAttribute("src");
}

function setState(status, text) {
  ui.state.dataset.status = status;
  ui.state.textContent = text;
}

// What has been logged already, so that each state and each attempt is logged once.
let seen = new Set();

function log(key, state, text) {
  if (seen.has(key)) return;
  seen.add(key);
  for (const item of ui.log.querySelectorAll("li.now")) item.classList.remove("now");
  const item = document.createElement("li");
  item.textContent = text;
  item.dataset.state = state;
  item.classList.add("now");
  ui.log.append(item);
}

function fail(message, { charged = 0, status = "failed" } = {}) {
  setState(status, status === "failed" ? "Failed" : "Could not start");
  ui.error.textContent = charged > 0 ? message : `${message} Nothing was charged.`;
  show(ui.error, true);
  ui.run.disabled = false;
}

// Which of the options sent this attempt's model took ("" when none were sent).
function describeOptions(options) {
  if (!options) return "";
  const parts = [];
  if (options.applied.length) parts.push(`options applied: ${options.applied.join(", ")}`);
  if (options.dropped.length) parts.push(`not taken: ${options.dropped.join(", ")}`);
  return parts.length ? ` (${parts.join("; ")})` : "";
}

function describeAttempt(attempt, index) {
  const base = `Attempt ${index + 1}: ${attempt.model} (${attempt.provider})`;
  const options = describeOptions(attempt.options);
  if (attempt.status === "succeeded") {
    return `${base} succeeded in ${(attempt.duration_ms / 1000).toFixed(1)} s${options}`;
  }
  const error = attempt.error ? ` — ${attempt.error.type}: ${attempt.error.message}` : "";
  return `${base} ${attempt.status}${options}${error}`;
}

function credits(n) {
  return `${n} credit${n === 1 ? "" : "s"}`;
}

function render(job) {
  const p = job.progress;
  if (job.status === "processing") {
    const current = p && job.attempts[p.attempt - 1];
    if (!p) {
      log("processing", "processing", "Processing");
    } else if (!current || current.status === "running") {
      log(
        `progress:${p.attempt}:${p.state}`,
        "processing",
        `Attempt ${p.attempt}: ${p.model} (${p.provider}), ${p.state}`,
      );
    }
  }
  job.attempts.forEach((attempt, index) => {
    if (attempt.status !== "running") {
      log(`attempt:${index}`, `attempt-${attempt.status}`, describeAttempt(attempt, index));
    }
  });
  if (job.status === "queued") {
    setState("queued", "Queued: waiting for a worker");
  } else if (job.status === "processing") {
    setState(
      "processing",
      p ? `Processing: attempt ${p.attempt}, ${p.model} (${p.provider}), ${p.state}` : "Processing",
    );
  } else if (job.status === "completed") {
    log("completed", "completed", `Completed by ${job.model}: ${credits(job.usage.credits)} charged`);
    setState("completed", `Completed by ${job.model}`);
    showResult(job);
  } else if (job.status === "failed") {
    const message = job.error ? job.error.message : "The job failed.";
    log("failed", "failed", `Failed: ${message}`);
    fail(message, { charged: job.usage.credits });
  }
}

function localUrl(url) {
  const parsed = new URL(url, location.href);
  return new URL(parsed.pathname + parsed.search, location.href).href;
}

function showResult(job) {
  const image = job.images[0];
  if (image) ui.after.src = localUrl(image.url);
  ui.model.textContent = job.model ?? "";
  ui.cost.textContent = credits(job.usage.credits);
  ui.attempts.textContent = job.attempts.map((a, i) => describeAttempt(a, i)).join("; ");
  show(ui.result, true);
  ui.run.disabled = false;
}

async function poll(statusUrl) {
  for (;;) {
    const response = await fetch(statusUrl, { credentials: "same-origin" });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      fail(body?.error?.message ?? `The console answered ${response.status}.`, { status: "error" });
      return;
    }
    render(body);
    if (TERMINAL.has(body.status)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function follow(accepted) {
  ui.link.textContent = accepted.jobId;
  ui.link.href = `${form.dataset.generations}${encodeURIComponent(accepted.jobId)}`;
  log("queued", "queued", "Queued: waiting for a worker");
  setState("queued", "Queued: waiting for a worker");
  const url = new URL(localUrl(accepted.wsUrl));
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  let finished = false;
  let socket;
  try {
    socket = new WebSocket(url.href, ["tryon"]);
  } catch {
    poll(accepted.statusUrl);
    return;
  }
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "status") {
      render(message.job);
      if (TERMINAL.has(message.job.status)) finished = true;
    }
  });
  socket.addEventListener("close", () => {
    if (!finished) poll(accepted.statusUrl); // the socket closed early: keep following by polling
  });
}

form.addEventListener("change", (event) => {
  if (event.target.matches('input[type="radio"], input[type="file"]')) refreshPreviews();
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  let data;
  try {
    data = formData();
  } catch (error) {
    reset();
    fail(error.message, { status: "error" });
    return;
  }
  reset();
  seen = new Set();
  ui.before.src = $("person-preview").src;
  ui.run.disabled = true;
  setState("sending", "Sending the photos…");
  let response;
  try {
    response = await fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { [form.dataset.csrfHeader]: form.dataset.csrf },
    });
  } catch {
    fail("The gateway could not be reached.", { status: "error" });
    return;
  }
  const body = await response.json().catch(() => null);
  if (response.status !== 202) {
    fail(body?.error?.message ?? `The console answered ${response.status}.`, { status: "error" });
    // model-options.js shows a refused option beside its field
    form.dispatchEvent(new CustomEvent("playground:refused", { detail: body?.error ?? null }));
    return;
  }
  follow(body);
});

refreshPreviews();
ui.run.disabled = false; // the form is ours now: the page came with it disabled
