"""The network lab: emulated and shaped links for tests and benchmarks.

* :mod:`siakdesk.netlab.inprocess`: a link emulator inside one process, put
  between one :class:`~siakdesk.core.meetingsession.MeetingSession` and the
  network (cuts, delay, jitter, random loss on its UDP packets);
* :mod:`siakdesk.netlab.namespaces`: real links between Linux network
  namespaces, shaped with ``tc`` and ``nft`` (needs root).
"""
