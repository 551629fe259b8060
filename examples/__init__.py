"""Runnable spanflow examples; `examples.order_fulfilment` is what ``spanflow demo`` runs."""

__all__: list[str] = []
