"""Reduced-precision ONNX graphs (tools/export_onnx.py --fp16).

The backbone, FPN and head (the nodes the exporter names /backbone/... and /head/...) are
converted to float16 by onnxruntime's own converter (onnxruntime.transformers.float16); the
post-processing stays in float32. It is thresholds, top-k, box decoding with exp, and NMS on
coordinates up to about 1333, where float16 steps by 1 pixel. Inputs and outputs stay float32
at the boundary.
"""
MODEL_SCOPES = ("/backbone/", "/head/")
# detections of the fp16 graph must match fp32 ones this closely (export/onnx.py: agreement)
FP16_SCORE_TOLERANCE = 1e-2
FP16_IOU_MIN = 0.9


def post_processing_nodes(model, source, action):
    """The names of the nodes of the ONNX ``model`` (read from ``source``) outside the backbone,
    FPN and head: those kept in float32; a ValueError when there is nothing else to ``action``."""
    outside = [node.name for node in model.graph.node if not node.name.startswith(MODEL_SCOPES)]
    if len(outside) == len(model.graph.node):
        raise ValueError("{} has no /backbone/ or /head/ nodes to {}: not a tools/export_onnx.py file".format(
            source, action))
    return outside


def convert_to_fp16(source, destination):
    """Writes the float16 version of the ONNX file ``source`` to ``destination``; returns
    (nodes converted, nodes kept in float32)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(source)
    kept = post_processing_nodes(model, source, "convert")
    converted = convert_float_to_float16(model, keep_io_types=True, node_block_list=kept)
    onnx.save(converted, destination)
    return len(model.graph.node) - len(kept), len(kept)
