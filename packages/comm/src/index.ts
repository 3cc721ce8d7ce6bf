// @dd/comm public surface.
import './backends';

export type {
  Comm, Listener, CommHandler, CommOptions, ConnectOptions, ListenOptions, TlsOptions, Compression, PeerInfo,
} from './comm';
export {
  CommClosedError, TimeoutError, AddressError, ConnectionLimitError, TlsError, UnknownOpError, BadRequestError,
  RemoteError, DdError, ProtocolError, FrameLimitError, DeserializationError, SerializationError,
  type WireError,
} from './errors';
export {
  parseAddress, unparseAddress, normalizeAddress, resolveAddress, getAddressHost, getAddressHostPort,
  parseHostPort, unparseHostPort, parseListenAddress, listenHttp, getLocalIp,
} from './addressing';
export { registerBackend, getBackend, registeredSchemes, type Backend, type BackendConnectOptions } from './registry';
export { connect, listen } from './connect';
export { PROTOCOL_VERSION, DD_VERSION, type HandshakeMessage } from './handshake';
export {
  Server, NO_REPLY, type ServerOptions, type Handler, type StreamHandler, type HandlerContext, type Reply,
  type ListenTarget, type HandleStreamOptions,
} from './server';
export { ConnectionPool, rpc, unwrapReply, type ConnectionPoolOptions, type CallOptions, type Rpc, type StandaloneRpc } from './pool';
export { BatchedSend, type BatchedSendOptions } from './batched';
export { silentLogger, consoleLogger, type Logger } from './logger';
export { readTlsFiles, type TlsFiles } from './tls-files';
