"""Order lookups for the support desk (replace with a call to your order system)."""

ORDERS = {
    "A-100": {"status": "shipped", "total": 42.0},
    "A-101": {"status": "refunded", "total": 12.5},
}


def lookup_order(order_id: str) -> dict:
    """Look up an order by its number.

    Args:
        order_id: The order number, like A-100.
    """
    order = ORDERS.get(order_id)
    if order is None:
        raise ValueError(f"no order {order_id}")
    return {"order_id": order_id, **order}
