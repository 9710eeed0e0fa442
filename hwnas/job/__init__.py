"""The search job, end to end: the typed recipe (:mod:`~hwnas.job.recipe`), the targets a
recipe names (:mod:`~hwnas.job.targets`), the two kinds of search behind one protocol
(:mod:`~hwnas.job.search`, :mod:`~hwnas.job.blackbox`), verification on the device
(:mod:`~hwnas.job.verify`), the closed loop (:mod:`~hwnas.job.run`) and the report
(:mod:`~hwnas.job.report`)."""
