// The parts of a synthesized state machine definition (concreteAsl) the infrastructure tests read.
interface TaskParameters {
  TaskDefinition: string;
  LaunchType: string;
  Payload?: Record<string, unknown>;
  Overrides: { ContainerOverrides: Array<{ Name: string; Environment: Array<{ Name: string; Value: string }> }> };
}
interface AslState {
  Type: string;
  Next?: string;
  Resource?: string;
  Parameters: TaskParameters;
  Retry: Array<{ ErrorEquals: string[]; JitterStrategy?: string }>;
  Catch: unknown[];
  Choices: unknown[];
  Default?: string;
  ItemProcessor: { ProcessorConfig: { Mode: string }; States: Record<string, AslState> };
  ItemReader?: unknown;
  ItemSelector?: unknown;
  ResultWriter?: unknown;
  ResultPath?: unknown;
  MaxConcurrency?: number;
  ToleratedFailurePercentage?: number;
}
export interface Asl {
  StartAt: string;
  States: Record<string, AslState>;
}
