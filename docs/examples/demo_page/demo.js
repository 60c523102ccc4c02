// A try-on from a browser page with a demo session token (see docs/demo-sessions.md).
//
// The page is opened as index.html#gateway=http://127.0.0.1:8000&token=tryon_demo_...
// (server_snippet.py prints such a link). It lists the models, uploads the two photos as an
// async job, follows the job's WebSocket and shows the result beside the person photo.
"use strict";

const params = new URLSearchParams(location.hash.slice(1));
const gateway = (params.get("gateway") || "http://127.0.0.1:8000").replace(/\/$/, "");
const token = params.get("token") || "";
const auth = { Authorization: `Bearer ${token}` };

const form = document.getElementById("tryon");
const state = document.querySelector('[data-testid="demo-state"]');
const failure = document.querySelector('[data-testid="demo-error"]');
const pair = document.querySelector(".pair");

function show(text) {
  state.textContent = text;
}

function fail(text) {
  failure.textContent = text;
  failure.hidden = false;
  form.querySelector("button").disabled = false;
}

// Every error from the gateway is one envelope: {"error": {"code", "message", "type", ...}}.
async function errorOf(response) {
  try {
    const { error } = await response.json();
    return `${error.message} (${error.type})`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

async function listModels() {
  const response = await fetch(`${gateway}/api/v1/models`, { headers: auth });
  if (!response.ok) return fail(await errorOf(response));
  const select = form.elements.model;
  for (const model of (await response.json()).data) {
    if (model.id === "auto") continue;
    const credits = model.pricing.credits_per_image;
    select.add(new Option(`${model.name} (${credits} credits)`, model.id));
  }
}

function follow(jobId) {
  const base = gateway.replace(/^http/, "ws");
  // A browser cannot set Authorization on a WebSocket: the token goes as a subprotocol.
  const socket = new WebSocket(`${base}/api/v1/tryon/${jobId}/ws`, ["tryon", `tryon-key.${token}`]);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "error") return fail(`${message.error.message} (${message.error.type})`);
    const job = message.job;
    const step = job.progress ? ` (${job.progress.model}: ${job.progress.state})` : "";
    show(`${job.status}${step}`);
    if (job.status === "completed") {
      document.querySelector('[data-testid="demo-result"]').src = job.images[0].url;
      pair.hidden = false;
      show(`completed: ${job.model}, ${job.usage.credits} credits`);
      form.querySelector("button").disabled = false;
    } else if (job.status === "failed") {
      fail(`${job.error.message} Nothing was charged.`);
    }
  };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  failure.hidden = true;
  form.querySelector("button").disabled = true;
  const person = form.elements.person.files[0];
  document.querySelector('[data-testid="demo-person"]').src = URL.createObjectURL(person);
  const body = new FormData();
  body.append("person_images", person);
  body.append("garment_images", form.elements.garment.files[0]);
  body.append("model", form.elements.model.value);
  body.append("mode", "async");
  show("uploading");
  const response = await fetch(`${gateway}/api/v1/tryon`, { method: "POST", headers: auth, body });
  if (response.status !== 202) return fail(await errorOf(response));
  const accepted = await response.json();
  show(accepted.status);
  follow(accepted.jobId);
});

if (!token) fail("Open this page with #gateway=...&token=tryon_demo_... (see server_snippet.py).");
else listModels();
