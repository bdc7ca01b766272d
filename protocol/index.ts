/**
 * The muxvisor wire protocol: framing, msgpack codec, message kinds, handshake rules and errors.
 * It depends on nothing of lib/ or supervisor/; a client in another language follows PROTOCOL.md.
 */
export * from './errors.js';
export * from './frame.js';
export * from './codec.js';
export * from './msgpack-check.js';
export * from './messages.js';
export * from './handshake.js';
export * from './version.js';
export * from './discovery.js';
export * from './deadlines.js';
export * from './services.js';
