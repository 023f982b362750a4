// The new VPC's `restrictDefaultSecurityGroup` custom resource runs a CDK-provided Lambda whose log
// group Lambda would create on first use, without retention (kept forever, outside the stack).
// Declaring the group here, before the custom resource runs, gives it the stack's retention and
// removal with the stack.
import { Fn, RemovalPolicy, Stack, type CfnResource } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** The provider's id in the stack (aws-cdk-lib's restrict-default-security-group provider). */
const PROVIDER_ID = 'Custom::VpcRestrictDefaultSGCustomResourceProvider';

export function retainVpcCustomResourceLogs(scope: Construct, vpc: ec2.Vpc, retention: logs.RetentionDays): logs.LogGroup | undefined {
  const provider = Stack.of(scope).node.tryFindChild(PROVIDER_ID);
  const customResource = vpc.node.tryFindChild('RestrictDefaultSecurityGroupCustomResource');
  if (!provider || !customResource) return undefined;
  const handler = provider.node.findChild('Handler') as CfnResource;
  const group = new logs.LogGroup(scope, 'VpcCustomResourceLogs', {
    logGroupName: Fn.join('', ['/aws/lambda/', handler.ref]),
    retention,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  customResource.node.addDependency(group);
  return group;
}
