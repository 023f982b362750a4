// cdk-nag 3 acknowledgements. Each one carries its reason here, in code. IAM5 (wildcard) findings
// are per statement resource/action (`AwsSolutions-IAM5[Resource::<Bucket.Arn>/runs/*]`) and their
// text contains logical ids, so they are acknowledged by pattern: an aspect computes the findings of
// the named roles exactly as cdk-nag does and acknowledges only those that match a reviewed pattern.
// Any other wildcard still fails the check.
import { Aspects, type CfnResource, Stack, Validations, type IAspect } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

export interface WildcardAcknowledgement {
  /** Matched against the finding, e.g. `Resource::*` or `Action::s3:GetObject*`. */
  readonly pattern: RegExp;
  /** Roles (or other constructs) whose policies the acknowledgement applies to. */
  readonly where: readonly IConstruct[];
  readonly reason: string;
}

export function acknowledgeIam5(scope: IConstruct, rules: readonly WildcardAcknowledgement[]): void {
  Aspects.of(scope).add(new Iam5Acknowledger(rules));
}

class Iam5Acknowledger implements IAspect {
  constructor(private readonly rules: readonly WildcardAcknowledgement[]) {}

  visit(node: IConstruct): void {
    if (!(node instanceof iam.CfnPolicy || node instanceof iam.CfnRole)) return;
    const rules = this.rules.filter((r) => r.where.some((w) => isWithin(node, w)));
    if (rules.length === 0) return;
    for (const finding of wildcardFindings(node)) {
      const rule = rules.find((r) => r.pattern.test(finding));
      if (rule) Validations.of(node).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason: rule.reason });
    }
  }
}

function isWithin(node: IConstruct, scope: IConstruct): boolean {
  const p = scope.node.path;
  return node.node.path === p || node.node.path.startsWith(`${p}/`);
}

interface Statement {
  Effect?: string;
  Action?: string | string[];
  Resource?: unknown;
}

/** The IAM5 findings cdk-nag reports for a role's inline policies or a policy. */
function wildcardFindings(node: CfnResource): string[] {
  const stack = Stack.of(node);
  const documents: Array<{ Statement?: Statement[] }> = [];
  if (node instanceof iam.CfnPolicy) documents.push(stack.resolve(node.policyDocument));
  if (node instanceof iam.CfnRole) {
    for (const policy of (stack.resolve(node.policies) as Array<{ policyDocument: unknown }> | undefined) ?? []) {
      documents.push(stack.resolve(stack.resolve(policy).policyDocument));
    }
  }
  const findings = new Set<string>();
  const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
  for (const doc of documents) {
    for (const s of doc.Statement ?? []) {
      if (s.Effect !== 'Allow') continue;
      for (const a of list(s.Action)) if (a.includes('*')) findings.add(`Action::${a}`);
      for (const r of list(s.Resource)) {
        const flat = flattenCfnReference(r);
        if (flat.includes('*')) findings.add(`Resource::${flat}`);
      }
    }
  }
  return [...findings];
}

/**
 * How cdk-nag names a resource in a finding: cdk-nag 3's `flattenCfnReference`
 * (src/utils/flatten-cfn-reference.ts, Apache-2.0), rewritten here so the construct needs no cdk-nag
 * (and its peers) in an app that runs no cdk-nag. test/infra-stack.test.ts runs cdk-nag's
 * AwsSolutions pack over the stack: a finding named differently there stays unacknowledged and fails it.
 */
function flattenCfnReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
  const fn = node as Record<string, unknown>;
  if (fn['Fn::Join']) {
    const [delimiter, items] = fn['Fn::Join'] as [string, unknown[]];
    return items.map(flattenCfnReference).join(delimiter);
  }
  if (fn['Fn::Sub']) return flattenCfnReference(fn['Fn::Sub']);
  if (fn['Fn::GetAtt']) {
    const [resource, attribute] = fn['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenCfnReference(resource)}.${flattenCfnReference(attribute)}>`;
  }
  if (fn['Fn::ImportValue']) return flattenCfnReference(fn['Fn::ImportValue']);
  if (fn.Ref) return `<${flattenCfnReference(fn.Ref)}>`;
  return JSON.stringify(node);
}
