// For tests and sibling packages: building blocks that are not part of the stable surface.
export * from './index';
export { BaseComm, RESOLVED } from './base-comm';
export type { ConfigurableComm } from './comm';
export { makeHandshake, checkPeerHandshake, agreeCompression, performHandshake } from './handshake';
export { StreamComm } from './transports/stream-comm';
export { WsComm } from './transports/ws';
export { InprocComm } from './transports/inproc';
export { errorToWire, isRetryableNetworkError, isTlsFailure } from './errors';
export { errorReply } from './server';
