"""Following a packet through the OpenFlow data plane (``k8semu trace``, issue #15): the switch's
own tracer read section by section (``ofptrace``), where a packet enters (``start``) and what
happens between sections (``path``). Pure: the runtime hands in the switches."""
