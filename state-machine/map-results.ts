// Where the distributed Map's ResultWriter puts its children's outputs, and a ResultWriterV2 that
// leaves the grant to the EcrBackup construct (CDK's own grant covers the whole bucket).
//
// Without a ResultWriter a DISTRIBUTED Map collects every child's output into its own result
// before ResultPath is applied, so `ResultPath: null` does not keep it under the 256 KiB payload
// limit, and States.DataLimitExceeded cannot be caught: the summary would never run. With it,
// the Map's result is `{MapRunArn, ResultWriterDetails}` and the outputs are objects under
// `<prefix>runs/map-results/<map run id>/` (expired with runs/).
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { runKeys } from '../schema/contract.ts';

/** The store area (below the store prefix) the ResultWriter writes to, no trailing slash. */
export const MAP_RESULTS_AREA = runKeys.mapResults;

export class StoreResultWriter extends sfn.ResultWriterV2 {
  constructor(bucketNamePath: string, prefix: string) {
    super({
      bucketNamePath,
      prefix,
      writerConfig: new sfn.WriterConfig({ outputType: sfn.OutputType.JSON, transformation: sfn.Transformation.COMPACT }),
    });
  }

  override providePolicyStatements(): iam.PolicyStatement[] {
    return [];
  }
}
