"""Seeded generator of simulate requests shaped like an estate's.

A fixed pool of policies is shared the way an organization shares them: managed policies
attached to many principals, one SCP tree over every account, a few permissions boundaries, a
resource policy per resource.  Each request picks a principal, an action and a resource, and
carries the policies that principal and resource have, so the same documents recur across the
batch (as they do when an estate is asked many questions).

    python benchmarks/gen_requests.py [N] [SEED] > requests.jsonl
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.strategies import (  # noqa: E402
    ACTIONS,
    RandomChooser,
    context,
    full_access,
    policy,
    principal,
    resource_for,
)

POOL_POLICIES = 120
PRINCIPALS = 300
RESOURCES = 150


def _sample_request(c) -> dict:
    """A request used only as the focus for generating one pooled policy."""
    p = principal(c)
    while not p.startswith("arn:"):
        p = principal(c)
    service = c.choice(tuple(ACTIONS))
    name = c.choice(ACTIONS[service])
    resource, account = resource_for(c, service, name)
    return {"principal": p, "action": f"{service}:{name}", "resource": resource, "resourceAccount": account, "context": context(c)}


def estate(seed: int) -> dict:
    c = RandomChooser(random.Random(seed))
    managed = [policy(c, _sample_request(c), "identity", 1, 5) for _ in range(POOL_POLICIES)]
    boundaries = [policy(c, _sample_request(c), "boundary", 1, 3) for _ in range(6)]
    sessions = [policy(c, _sample_request(c), "session", 1, 2) for _ in range(8)]
    scp_root = [full_access(c), policy(c, _sample_request(c), "scp", 2, 4)]
    scp_ous = [[full_access(c), policy(c, _sample_request(c), "scp", 1, 3)] for _ in range(3)]
    rcp_root = [policy(c, _sample_request(c), "rcp", 1, 2)]
    principals = []
    for _ in range(PRINCIPALS):
        p = principal(c)
        while not p.startswith("arn:"):
            p = principal(c)
        principals.append({
            "arn": p,
            "policies": [c.choice(managed) for _ in range(c.integer(1, 4))],
            "boundary": c.choice(boundaries) if c.chance(0.2) else None,
            "session": c.choice(sessions) if ":assumed-role/" in p and c.chance(0.3) else None,
            "ou": c.integer(0, len(scp_ous) - 1),
        })
    resources = []
    for _ in range(RESOURCES):
        service = c.choice(tuple(ACTIONS))
        name = c.choice(ACTIONS[service])
        arn, account = resource_for(c, service, name)
        focus = {"principal": c.choice(principals)["arn"], "action": f"{service}:{name}", "resource": arn,
                 "resourceAccount": account, "context": {}}
        resources.append({"arn": arn, "account": account, "service": service,
                          "policy": policy(c, focus, "resource", 1, 4) if c.chance(0.6) else None})
    return {"principals": principals, "resources": resources, "scp_root": scp_root, "scp_ous": scp_ous, "rcp_root": rcp_root}


def requests(n: int, seed: int = 7) -> list[dict]:
    """``n`` requests over one estate (same seed, same requests)."""
    e = estate(seed)
    c = RandomChooser(random.Random(seed + 1))
    out = []
    for i in range(n):
        who = c.choice(e["principals"])
        res = c.choice(e["resources"])
        action = f"{res['service']}:{c.choice(ACTIONS[res['service']])}"
        req = {
            "id": f"b{i}",
            "principal": who["arn"],
            "action": action,
            "resource": res["arn"],
            "resourceAccount": res["account"],
            "context": context(c),
            "wildcardOnlyAction": False,
            "deriveContext": True,
            "identityPolicies": who["policies"],
            "scps": [e["scp_root"], e["scp_ous"][who["ou"]]],
            # the resource control policy governs one account's resources only: a random RCP can
            # deny nearly everything, which would make every request in the batch alike
            "rcps": [e["rcp_root"]] if res["account"] == e["resources"][0]["account"] else [],
        }
        if res["policy"] is not None:
            req["resourcePolicy"] = res["policy"]
        if who["boundary"] is not None:
            req["permissionBoundary"] = who["boundary"]
        if who["session"] is not None:
            req["sessionPolicy"] = who["session"]
        out.append(req)
    return out


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    for r in requests(n, seed):
        print(json.dumps(r))
