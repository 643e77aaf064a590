"""`loadgen --explain`: what a scenario will send, at what rate, with which faults."""

from __future__ import annotations

from loadgen.config import LoadgenConfig
from loadgen.kinds import CATALOG, code_name
from loadgen.scenarios import SCENARIOS


def explain(config: LoadgenConfig) -> str:
    scenario = SCENARIOS[config.scenario]
    lines = [f"scenario {scenario.name}: {scenario.summary}"]
    if scenario.spike:
        spike = config.spike
        lines.append(
            f"rate: {config.rps:g}/s, {config.rps * spike.factor:g}/s from {spike.start:g}s for {spike.length:g}s, "
            f"then {config.rps:g}/s ({config.arrivals} arrivals)"
        )
    else:
        lines.append(f"rate: {config.rps:g}/s ({config.arrivals} arrivals)")
    lines.append("")
    lines.append(f"{'share':>7}  {'action':<27}{'rpc':<12}{'expects':<17}business counter on the service")
    for action, share in sorted(scenario.mix.shares().items(), key=lambda item: -item[1]):
        rpc, code, (counter, result) = CATALOG[action]
        lines.append(
            f'{share * 100:6.2f}%  {action.value:<27}{rpc.value:<12}{code_name(code):<17}{counter}{{result="{result}"}}'
        )
    for plan in scenario.faults:
        lines.append(f"faults in {plan.service} (PUT /admin/faults): {plan.spec}")
    return "\n".join(lines)
