"""fosrd: emit traffic sampled from fosr models in real time, as a service."""

__all__: list[str] = []
