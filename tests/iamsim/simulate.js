// Evaluates IAM requests with @cloud-copilot/iam-simulate, for writ's
// differential tests (tests/it/iam.rs). One JSON case a line on standard
// input; one JSON answer a line on standard output, in the same order:
//   in:  {"identity": [POLICY...], "boundary": POLICY|null, "principal": ARN,
//         "action": "s3:GetObject", "resource": ARN|"*", "account": "123…",
//         "context": {"aws:CurrentTime": "…", …},
//         "resourcePolicy": POLICY (optional: a role's trust policy, say)}
//   out: {"result": "Allowed"|"ImplicitlyDenied"|"ExplicitlyDenied"}
//        or {"error": "…"} when the simulator refuses the case.
// This script only calls the package; the package is a test tool, installed
// under target/ by the harness, never part of writ.
const readline = require('node:readline');
const { runSimulation } = require('@cloud-copilot/iam-simulate');

async function simulate(c) {
  const simulation = {
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: c.account },
      contextVariables: c.context || {},
    },
    identityPolicies: c.identity.map((policy, i) => ({ name: `identity${i}`, policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  if (c.resourcePolicy) {
    simulation.resourcePolicy = c.resourcePolicy;
  }
  if (c.boundary) {
    simulation.permissionBoundaryPolicies = [{ name: 'boundary', policy: c.boundary }];
  }
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') {
    return { error: JSON.stringify(result.errors) };
  }
  return { result: result.overallResult };
}

(async () => {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    try {
      answer = await simulate(JSON.parse(line));
    } catch (e) {
      answer = { error: String(e && e.message || e) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
})();
