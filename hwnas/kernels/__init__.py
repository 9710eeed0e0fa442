"""Kernel-level latency prediction for any ONNX model: the kernels a runtime executes
(:mod:`.graph`), random networks that measure them in context (:mod:`.sampler`), a model
per kernel family fitted on those measurements (:mod:`.model`), and the measuring loop
(:mod:`.build`)."""
