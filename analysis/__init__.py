"""Analysis side of the dynamic-loss toolkit, in three rooms (imports flow one way):

- :mod:`analysis.core`: cache reader, fusion, super-learners, metrics, statistics, calibration and
  table builders (pure functions over arrays and frames), and the orchestration ``dynloss analyze``
  calls (:mod:`analysis.core.pipeline`);
- :mod:`analysis.audit`: every claim of the paper with its verdict, the published tables and the
  gradient computations the claims need;
- :mod:`analysis.report`: page helpers, figures, the offline rendering engine, ``dynloss report``.

report → audit → core → :mod:`training` (losses, cache format); :mod:`analysis.cli` is the
``dynloss`` root command.
"""
