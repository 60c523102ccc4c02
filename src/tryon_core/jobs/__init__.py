"""Async jobs: submitted (202), run by a worker pool, polled or watched, resumed after a crash.

- :mod:`~tryon_core.jobs.submit`: validate, keep the images, reserve, persist, queue.
- :mod:`~tryon_core.jobs.dispatch`: the seam that hands job ids to workers (in-process pool).
- :mod:`~tryon_core.jobs.worker`: claim with a lease, run or resume, settle exactly once.
- :mod:`~tryon_core.jobs.finish`: the final transaction (settlement, files, webhook).
- :mod:`~tryon_core.jobs.sweeper`: take over orphaned and queued jobs, expire overdue ones.
- :mod:`~tryon_core.jobs.cancel`, :mod:`~tryon_core.jobs.view`, :mod:`~tryon_core.jobs.links`,
  :mod:`~tryon_core.jobs.events`: what the routes use.
"""
