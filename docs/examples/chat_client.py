"""Try-on through the official openai package: plain, streamed, and an error.

    TRYON_URL=http://127.0.0.1:8000 TRYON_KEY=sk-tryon-... \
        python chat_client.py person.jpg garment.png out.png
"""

import base64
import mimetypes
import os
import sys

import openai
from openai import OpenAI


def data_url(path: str) -> str:
    mime = mimetypes.guess_type(path)[0] or "image/jpeg"
    with open(path, "rb") as file:
        return f"data:{mime};base64,{base64.b64encode(file.read()).decode()}"


def save(url: str, path: str) -> None:
    with open(path, "wb") as file:
        file.write(base64.b64decode(url.split(",", 1)[1]))


person, garment, out = sys.argv[1:4]
client = OpenAI(
    base_url=os.environ.get("TRYON_URL", "http://127.0.0.1:8000") + "/api/v1",
    api_key=os.environ["TRYON_KEY"],
)
messages = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Put this shirt on this person"},
            {"type": "image_url", "image_url": {"url": data_url(person)}},
            {"type": "image_url", "image_url": {"url": data_url(garment)}},
        ],
    }
]

# Plain. `images` is not a declared field of the SDK's types: it is a list of dicts.
completion = client.chat.completions.create(
    model="auto",
    messages=messages,
    extra_body={"modalities": ["image", "text"], "tryon": {"category": "tops"}},
)
message = completion.choices[0].message
save(message.images[0]["image_url"]["url"], out)
print("plain:", completion.model, message.content, completion.usage.model_extra["credits"])

# Streamed: the images arrive whole, in one delta.
stream = client.chat.completions.create(model="auto", messages=messages, stream=True)
for chunk in stream:
    if chunk.choices and (chunk.choices[0].delta.model_extra or {}).get("images"):
        print("streamed:", chunk.model, len(chunk.choices[0].delta.model_extra["images"]))
    elif chunk.usage:
        print("usage:", chunk.usage.model_extra["credits"])

# Errors are the SDK's own classes; the envelope is in `.body`.
try:
    client.chat.completions.create(model="nobody/nothing", messages=messages)
except openai.NotFoundError as error:
    print("error:", error.status_code, error.body["type"], error.body["param"])
