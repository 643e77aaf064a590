from tests.support.live_stack import live_prometheus, live_stack

__all__ = ["live_prometheus", "live_stack"]
