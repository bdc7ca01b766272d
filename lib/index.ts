/**
 * muxvisor, the library user processes import. The client (connect, runs, requests, services)
 * arrives with the supervisor; until then this exports the protocol's error type and the version.
 */
export { ErrorCode, isMuxvisorError, MuxvisorError, type WireError } from '../protocol/errors.js';
export { VERSION } from './version.js';
