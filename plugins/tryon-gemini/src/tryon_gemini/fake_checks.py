"""How the Gemini fake reads a ``generateContent`` body: as strictly as Google's proto3 JSON.

Field names in camelCase or snake_case (mixed freely), unknown names refused, types checked,
``bytes`` in either base64 alphabet. A refusal raises :class:`Invalid` with Google's message;
the fake answers it as 400 ``INVALID_ARGUMENT``. What the reader saw is noted for the record.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

import msgspec
from PIL import Image

from tryon_core.plugin import sniff
from tryon_gemini.wire import ASPECT_RATIOS, MAX_REQUEST_BYTES

__all__ = ["TROUBLESHOOTING", "Invalid", "Parsed", "Reader"]

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
TROUBLESHOOTING = (
    "Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
)

# Field names per message, as camelCase; snake_case spellings are derived.
_REQUEST = (
    "contents",
    "generationConfig",
    "safetySettings",
    "systemInstruction",
    "tools",
    "toolConfig",
    "cachedContent",
)
_CONTENT = ("role", "parts")
_PART_DATA = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
_PART = (*_PART_DATA, "thought", "thoughtSignature", "videoMetadata")
_BLOB = ("mimeType", "data")
_GENERATION = (
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
)
_IMAGE_CONFIG = ("aspectRatio", "imageSize", "personGeneration")
_SAFETY_SETTING = ("category", "threshold")


class Invalid(Exception):
    """A request the real service refuses with 400 INVALID_ARGUMENT."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Parsed(msgspec.Struct, kw_only=True):
    images: list[bytes] = msgspec.field(default_factory=list)
    texts: list[str] = msgspec.field(default_factory=list)
    aspect_ratio: str | None = None
    modalities: list[str] | None = None


class Reader:
    """Reads one request body as the real service would, noting how it was written."""

    def __init__(self) -> None:
        self.casings: set[str] = set()  # "camel", "snake"
        self.alphabets: set[str] = set()  # "standard", "urlsafe"
        self.mime_types: list[str] = []
        self.sniffed: list[str | None] = []
        self.sizes: list[tuple[int, int]] = []
        self.roles: list[str] = []
        self.parsed = Parsed()

    def summary(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            "casing": "mixed" if len(self.casings) > 1 else next(iter(self.casings), "camel"),
            "base64": sorted(self.alphabets),
            "mime_types": self.mime_types,
            "sniffed": self.sniffed,
            "sizes": self.sizes,
            "roles": self.roles,
            "texts": self.parsed.texts,
            "aspect_ratio": self.parsed.aspect_ratio,
            "response_modalities": self.parsed.modalities,
            "fields": sorted(fields),
        }

    def request(self, headers: Any, body: bytes) -> dict[str, Any]:
        content_type = str(headers.get("content-type", "")).split(";")[0].strip().lower()
        if content_type != "application/json":
            raise Invalid(
                f"Invalid JSON payload received. Unexpected content type {content_type!r}."
            )
        if len(body) > MAX_REQUEST_BYTES:
            raise Invalid(f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise Invalid("Invalid JSON payload received. Unexpected token.") from None
        fields = self.fields(document, "", _REQUEST)
        contents = fields.get("contents")
        if not contents:
            raise Invalid("* GenerateContentRequest.contents: contents is not specified\n")
        for c, content in enumerate(_list(contents, "contents", "Content")):
            self.content(content, f"contents[{c}]", self.parsed)
        if (system := fields.get("systemInstruction")) is not None:
            self.content(system, "system_instruction", Parsed())
        settings = _list(fields.get("safetySettings"), "safety_settings", "SafetySetting")
        for s, setting in enumerate(settings):
            self.fields(setting, f"safety_settings[{s}]", _SAFETY_SETTING)
        if (config := fields.get("generationConfig")) is not None:
            self.generation(self.fields(config, "generation_config", _GENERATION))
        return fields

    def content(self, content: Any, path: str, parsed: Parsed) -> None:
        fields = self.fields(content, path, _CONTENT)
        role = fields.get("role") or ""
        if role not in ("", "user", "model"):
            raise Invalid("Please use a valid role: user, model.")
        self.roles.append(role)
        parts = _list(fields.get("parts"), f"{path}.parts", "Part")
        if not parts:
            raise Invalid(
                f"* GenerateContentRequest.{path}.parts: contents.parts must not be empty.\n"
            )
        for p, part in enumerate(parts):
            where = f"{path}.parts[{p}]"
            given = self.fields(part, where, _PART)
            data = {name: value for name, value in given.items() if name in _PART_DATA}
            if not data:
                raise Invalid(
                    f"* GenerateContentRequest.{where}.data: required oneof field 'data' must "
                    "have one initialized field\n"
                )
            if len(data) > 1:
                raise Invalid(
                    f"Invalid JSON payload received. Multiple values for oneof 'data' at '{where}'."
                )
            name, value = next(iter(data.items()))
            if name == "text":
                parsed.texts.append(_string(value, f"{where}.text"))
            elif name == "inlineData":
                parsed.images.append(self.blob(value, f"{where}.inline_data"))
            else:
                raise Invalid(f"This fake of the Gemini API does not serve {_snake(name)} parts.")

    def blob(self, value: Any, path: str) -> bytes:
        fields = self.fields(value, path, _BLOB)
        mime_type = _string(fields.get("mimeType", ""), f"{path}.mime_type")
        if not mime_type:
            raise Invalid(
                f"* GenerateContentRequest.{path}.mime_type: mime_type is not specified\n"
            )
        if mime_type not in IMAGE_TYPES:
            raise Invalid(f"Unsupported MIME type: {mime_type}")
        data = self.bytes(fields.get("data", ""), f"{path}.data")
        if not data:
            raise Invalid(f"* GenerateContentRequest.{path}.data: data is not specified\n")
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                size = image.size
        except Exception:
            raise Invalid(f"Unable to process input image. {TROUBLESHOOTING}") from None
        self.mime_types.append(mime_type)
        self.sniffed.append(sniff(data))
        self.sizes.append(size)
        return data

    def bytes(self, value: Any, path: str) -> bytes:
        """proto3 JSON ``bytes``: standard or URL-safe base64, padded or not."""
        text = _string(value, path)
        if not _BASE64.match(text) or len(text.rstrip("=")) % 4 == 1:
            raise _base64_error(path, text)
        if set(text) & set("+/"):
            self.alphabets.add("standard")
        if set(text) & set("-_"):
            self.alphabets.add("urlsafe")
        bare = text.rstrip("=").replace("-", "+").replace("_", "/")
        try:
            return base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise _base64_error(path, text) from None

    def generation(self, fields: dict[str, Any]) -> None:
        parsed = self.parsed
        if (modalities := fields.get("responseModalities")) is not None:
            parsed.modalities = []
            path = "generation_config.response_modalities"
            for m, modality in enumerate(_list(modalities, path)):
                name = _string(modality, f"{path}[{m}]").upper()
                if name == "AUDIO":
                    raise Invalid("Model does not support the requested response modality: AUDIO")
                if name not in ("TEXT", "IMAGE", "MODALITY_UNSPECIFIED"):
                    raise _type_error(
                        f"{path}[{m}]",
                        "type.googleapis.com/google.ai.generativelanguage.v1beta."
                        "GenerationConfig.Modality",
                        modality,
                    )
                parsed.modalities.append(name)
        count = fields.get("candidateCount")
        if count is not None and (not isinstance(count, int) or count > 1):
            raise Invalid("Multiple candidates is not enabled for models/gemini-2.5-flash-image")
        if (config := fields.get("imageConfig")) is not None:
            path = "generation_config.image_config"
            image = self.fields(config, path, _IMAGE_CONFIG)
            if (ratio := image.get("aspectRatio")) is not None:
                if _string(ratio, f"{path}.aspect_ratio") not in ASPECT_RATIOS:
                    raise Invalid(f"Unsupported aspect ratio: {ratio}.")
                parsed.aspect_ratio = ratio
            size = image.get("imageSize")
            if size is not None and size != "1K":
                raise Invalid(f"Unsupported image size: {size}. This model only supports 1K.")

    def fields(self, value: Any, path: str, names: tuple[str, ...]) -> dict[str, Any]:
        """A JSON object's known fields under their camelCase names; unknown names refused."""
        if not isinstance(value, dict):
            raise _type_error(path or "request", "message", value)
        found: dict[str, Any] = {}
        for key, item in value.items():
            name = next((n for n in names if key in (n, _snake(n))), None)
            if name is None:
                where = f" at '{path}'" if path else ""
                raise Invalid(
                    f'Invalid JSON payload received. Unknown name "{key}"{where}: '
                    "Cannot find field.",
                    field=path or None,
                )
            if name in found:
                raise Invalid(f'Invalid JSON payload received. Duplicate value for "{key}".')
            if name != name.lower():  # only names with a capital letter tell casings apart
                self.casings.add("camel" if key == name else "snake")
            if item is not None:  # proto3 JSON: null is the default value
                found[name] = item
        return found


def _list(value: Any, path: str, kind: str = "TYPE_STRING") -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(path, kind, value)
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _type_error(path, "TYPE_STRING", value)
    return value


_BASE64 = re.compile(r"^[A-Za-z0-9+/\-_]*={0,2}$")


def _base64_error(path: str, text: str) -> Invalid:
    shown = text if len(text) <= 40 else text[:40] + "..."
    return Invalid(
        f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{shown}\"",
        field=path,
    )


def _type_error(path: str, kind: str, value: Any) -> Invalid:
    shown = msgspec.json.encode(value).decode()[:60]
    return Invalid(f"Invalid value at '{path}' ({kind}), {shown}", field=path)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
