"""TFLite model metadata (the ``TFLITE_METADATA`` entry Android's metadata extractor and codegen read):
written into a ``.tflite`` so the file describes itself -- name, description, version, author, and per input
and output tensor its image layout, normalisation (mean/std) and value range.

The metadata is a flatbuffer of TFLite Support's ``metadata_schema.fbs`` (file identifier ``M001``). That
package cannot be installed beside TF 2.21 (it pins protobuf < 4), so the few tables we fill are written and
read here with the ``flatbuffers`` runtime, field slots numbered as in that schema; the model itself is
rewritten with LiteRT's generated TFLite schema (object API).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

METADATA_NAME = "TFLITE_METADATA"
MIN_PARSER_VERSION = "1.0.0"  # only fields that exist since metadata schema 1.0
_IMAGE_PROPERTIES = 2  # ContentProperties union: FeatureProperties=1, ImageProperties=2
_NORMALIZATION = 1  # ProcessUnitOptions union: NormalizationOptions=1
_RGB, _GRAYSCALE = 1, 2


@dataclass(frozen=True)
class TensorInfo:
    """An image tensor: what its values mean and how to get there from 8-bit pixels."""

    name: str
    description: str
    height: int
    width: int
    channels: int
    mean: Sequence[float] = (0.0,)  # normalised = (pixel - mean) / std
    std: Sequence[float] = (255.0,)
    minimum: Sequence[float] = (0.0,)
    maximum: Sequence[float] = (1.0,)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    version: str
    author: str
    license: str = ""
    inputs: List[TensorInfo] = field(default_factory=list)
    outputs: List[TensorInfo] = field(default_factory=list)


def _strings(b: flatbuffers.Builder, *values: str) -> List[int]:
    return [b.CreateString(v) for v in values]


def _floats(b: flatbuffers.Builder, values: Sequence[float]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(list(values)):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _offsets(b: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for o in reversed(list(offsets)):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def _tensor(b: flatbuffers.Builder, t: TensorInfo) -> int:
    name, desc = _strings(b, t.name, t.description)
    b.StartObject(2)  # ImageSize
    b.PrependUint32Slot(0, t.width, 0)
    b.PrependUint32Slot(1, t.height, 0)
    size = b.EndObject()
    b.StartObject(2)  # ImageProperties
    b.PrependInt8Slot(0, _GRAYSCALE if t.channels == 1 else _RGB, 0)
    b.PrependUOffsetTRelativeSlot(1, size, 0)
    image = b.EndObject()
    b.StartObject(3)  # Content
    b.PrependUint8Slot(0, _IMAGE_PROPERTIES, 0)
    b.PrependUOffsetTRelativeSlot(1, image, 0)
    content = b.EndObject()
    mean, std = _floats(b, t.mean), _floats(b, t.std)
    b.StartObject(2)  # NormalizationOptions
    b.PrependUOffsetTRelativeSlot(0, mean, 0)
    b.PrependUOffsetTRelativeSlot(1, std, 0)
    norm = b.EndObject()
    b.StartObject(2)  # ProcessUnit
    b.PrependUint8Slot(0, _NORMALIZATION, 0)
    b.PrependUOffsetTRelativeSlot(1, norm, 0)
    unit = b.EndObject()
    units = _offsets(b, [unit])
    hi, lo = _floats(b, t.maximum), _floats(b, t.minimum)
    b.StartObject(2)  # Stats
    b.PrependUOffsetTRelativeSlot(0, hi, 0)
    b.PrependUOffsetTRelativeSlot(1, lo, 0)
    stats = b.EndObject()
    b.StartObject(7)  # TensorMetadata
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(1, desc, 0)
    b.PrependUOffsetTRelativeSlot(3, content, 0)
    b.PrependUOffsetTRelativeSlot(4, units, 0)
    b.PrependUOffsetTRelativeSlot(5, stats, 0)
    return b.EndObject()


def metadata_buffer(info: ModelInfo) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier ``M001``) for ``info``."""
    b = flatbuffers.Builder(1024)
    inputs = _offsets(b, [_tensor(b, t) for t in info.inputs])
    outputs = _offsets(b, [_tensor(b, t) for t in info.outputs])
    sub_name, = _strings(b, info.name)
    b.StartObject(7)  # SubGraphMetadata
    b.PrependUOffsetTRelativeSlot(0, sub_name, 0)
    b.PrependUOffsetTRelativeSlot(2, inputs, 0)
    b.PrependUOffsetTRelativeSlot(3, outputs, 0)
    subgraph = b.EndObject()
    subgraphs = _offsets(b, [subgraph])
    name, desc, version, author, lic, parser = _strings(
        b, info.name, info.description, info.version, info.author, info.license, MIN_PARSER_VERSION)
    b.StartObject(8)  # ModelMetadata
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(1, desc, 0)
    b.PrependUOffsetTRelativeSlot(2, version, 0)
    b.PrependUOffsetTRelativeSlot(3, subgraphs, 0)
    b.PrependUOffsetTRelativeSlot(4, author, 0)
    b.PrependUOffsetTRelativeSlot(5, lic, 0)
    b.PrependUOffsetTRelativeSlot(7, parser, 0)
    b.Finish(b.EndObject(), file_identifier=b"M001")
    return bytes(b.Output())


def embed(tflite: bytes, info: ModelInfo) -> bytes:
    """``tflite`` with ``info`` as its ``TFLITE_METADATA`` entry (any previous one replaced)."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = list(metadata_buffer(info))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    b = flatbuffers.Builder(len(tflite) + 4096)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _name(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ---- reading it back (what an app's metadata extractor sees) -------------------------------------------

class _Table:
    """Minimal reader over a flatbuffer table: fields by schema slot."""

    def __init__(self, buf: bytes, pos: int):
        self.t = flatbuffers.table.Table(bytearray(buf), pos)

    def _offset(self, slot: int) -> int:
        return self.t.Offset(4 + 2 * slot)

    def string(self, slot: int) -> Optional[str]:
        o = self._offset(slot)
        return self.t.String(o + self.t.Pos).decode() if o else None

    def scalar(self, slot: int, kind) -> int:
        o = self._offset(slot)
        return self.t.Get(kind, o + self.t.Pos) if o else 0

    def table(self, slot: int) -> Optional["_Table"]:
        o = self._offset(slot)
        return _Table(self.t.Bytes, self.t.Indirect(o + self.t.Pos)) if o else None

    def tables(self, slot: int) -> List["_Table"]:
        o = self._offset(slot)
        if not o:
            return []
        start = self.t.Vector(o)
        return [_Table(self.t.Bytes, self.t.Indirect(start + 4 * i)) for i in range(self.t.VectorLen(o))]

    def floats(self, slot: int) -> List[float]:
        o = self._offset(slot)
        if not o:
            return []
        arr = self.t.GetVectorAsNumpy(flatbuffers.number_types.Float32Flags, o)
        return [float(v) for v in arr]


def _tensor_dict(t: _Table) -> Dict:
    image = t.table(3).table(1) if t.table(3) else None
    size = image.table(1) if image else None
    units = t.tables(4)
    norm = units[0].table(1) if units and units[0].scalar(0, flatbuffers.number_types.Uint8Flags) == _NORMALIZATION else None
    stats = t.table(5)
    return {"name": t.string(0), "description": t.string(1),
            "color_space": {_RGB: "RGB", _GRAYSCALE: "GRAYSCALE"}.get(
                image.scalar(0, flatbuffers.number_types.Int8Flags) if image else 0, "UNKNOWN"),
            "height": size.scalar(1, flatbuffers.number_types.Uint32Flags) if size else 0,
            "width": size.scalar(0, flatbuffers.number_types.Uint32Flags) if size else 0,
            "mean": norm.floats(0) if norm else [], "std": norm.floats(1) if norm else [],
            "max": stats.floats(0) if stats else [], "min": stats.floats(1) if stats else []}


def read(tflite: bytes) -> Optional[Dict]:
    """The ``TFLITE_METADATA`` of a ``.tflite`` as a dict, or None if it has none."""
    model = schema.Model.GetRootAs(bytearray(tflite), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _name(entry.Name()) != METADATA_NAME:
            continue
        data = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
        if data[4:8] != b"M001":
            raise ValueError("TFLITE_METADATA buffer lacks the M001 file identifier")
        root = _Table(data, flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))
        sub = root.tables(3)
        return {"name": root.string(0), "description": root.string(1), "version": root.string(2),
                "author": root.string(4), "license": root.string(5), "min_parser_version": root.string(7),
                "inputs": [_tensor_dict(t) for t in sub[0].tables(2)] if sub else [],
                "outputs": [_tensor_dict(t) for t in sub[0].tables(3)] if sub else []}
    return None
