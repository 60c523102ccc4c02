// Try-on through the official openai package for Node.js: plain, then streamed.
//
//   npm install openai
//   TRYON_URL=http://127.0.0.1:8000 TRYON_KEY=sk-tryon-... \
//     node chat_client.mjs person.jpg garment.png out.png
import { readFileSync, writeFileSync } from "node:fs";
import OpenAI from "openai";

const [person, garment, out] = process.argv.slice(2);
const dataUrl = (path) =>
  `data:${path.endsWith(".png") ? "image/png" : "image/jpeg"};base64,` +
  readFileSync(path).toString("base64");

const client = new OpenAI({
  baseURL: (process.env.TRYON_URL ?? "http://127.0.0.1:8000") + "/api/v1",
  apiKey: process.env.TRYON_KEY,
});
const messages = [
  {
    role: "user",
    content: [
      { type: "text", text: "Put this shirt on this person" },
      { type: "image_url", image_url: { url: dataUrl(person) } },
      { type: "image_url", image_url: { url: dataUrl(garment) } },
    ],
  },
];

// Plain: the images are in message.images, as data URLs.
const completion = await client.chat.completions.create({
  model: "auto",
  messages,
  modalities: ["image", "text"],
  tryon: { category: "tops" }, // extra fields are sent as they are
});
const url = completion.choices[0].message.images[0].image_url.url;
writeFileSync(out, Buffer.from(url.split(",")[1], "base64"));
console.log("plain:", completion.model, completion.usage.credits);

// Streamed: one delta carries the whole image.
const stream = await client.chat.completions.create({ model: "auto", messages, stream: true });
for await (const chunk of stream) {
  const images = chunk.choices[0]?.delta?.images;
  if (images) console.log("streamed:", chunk.model, images.length);
  else if (chunk.usage) console.log("usage:", chunk.usage.credits);
}
