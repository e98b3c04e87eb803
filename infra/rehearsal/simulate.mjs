// Evaluates a batch of IAM requests with @cloud-copilot/iam-simulate in one Node process.
// stdin: {"cases": [{"identityPolicies": [{name, policy}], "resourcePolicy": {...} | null,
//          "principal": ARN, "action": "s3:GetObject", "resource": ARN, "accountId": "123...",
//          "context": {...}}]}
// stdout: {"results": ["Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | "error: ...", ...]}
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const { cases } = JSON.parse(Buffer.concat(chunks).toString('utf8'))
const results = []
for (const c of cases) {
  const simulation = {
    identityPolicies: c.identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.resourcePolicy ?? undefined,
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: c.accountId },
      contextVariables: c.context ?? {}
    }
  }
  const answer = await runSimulation(simulation, {})
  // A resource "*" request answers per matching resource type, with an overall verdict.
  const verdict = answer.result?.analysis?.result ?? answer.result?.overallResult ?? answer.overallResult
  results.push(verdict ?? `error: ${JSON.stringify(answer.errors ?? answer).slice(0, 600)}`)
}
process.stdout.write(JSON.stringify({ results }))
