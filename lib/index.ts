/**
 * muxvisor, the library user processes import.
 *
 * ```ts
 * import { connect } from 'muxvisor';
 * await using client = await connect();
 * const run = await client.openRun('exp-42');
 * for (let step = 0; step < 100; step++) run.publish({ step, loss: 1 / (step + 1) });
 * console.log(await run.finish()); // { run: 'exp-42', status: 'ok', records: 100, ... }
 * ```
 */
export { Client, connect, type OpenRunOptions, RUN_ENV } from './client.js';
export type { CallOptions } from './connection.js';
export type { ConnectOptions } from './options.js';
export type { EventsOptions, EventsSubscription, EventTopic, SupervisorEvent } from './events.js';
export type { ResumePoint, RunInfo, RunPage, RunQueries, VerifyResult } from './runs.js';
export { type FinishOptions, type FinishResult, type HistoryOptions, Run, type SyncResult } from './run.js';
export {
  type AddOptions as AddServiceOptions, type ServiceEvents, type ServiceLogLine, Services, type StartOptions as StartServiceOptions,
  type StopOptions as StopServiceOptions, type ReadinessProbe, type RestartPolicy, type ServiceDefinition, type ServiceEvent,
  type ServiceExit, type ServiceState, type ServiceStatus,
} from './services.js';
export * as templates from './templates.js';
export { ErrorCode, isMuxvisorError, MuxvisorError, type WireError } from '../protocol/errors.js';
export { VERSION } from '../protocol/version.js';
