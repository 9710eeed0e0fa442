"""The torch modules hwnas builds: blocks of the built-in spaces (:mod:`hwnas.nn.blocks`),
mixed operations and weight-shared candidates (:mod:`hwnas.nn.mixed`, :mod:`hwnas.nn.shared`)
and the supernets a space provides for differentiable search (:mod:`hwnas.nn.supernets`).

Only torch and the layer vocabulary (:mod:`hwnas.ops`, :mod:`hwnas.layers`) are imported
here: spaces build their networks from these modules, never the other way round.
"""
