"""The flows that run the model, one module per command, siblings on one floor.

Each exposes ``run(<inputs>, out, *, model, config, command, on_progress) -> <Flow>Result`` with
``to_dict()``: `sample` (noise -> mocks), `inpaint` (an image and a mask -> the filled image),
`desify` (pictures or cubes -> survey-like cubes), and `train` (a dataset -> weights). They share
the loaded model (galgen.model) and one writer of outputs with provenance (`output`).
"""
