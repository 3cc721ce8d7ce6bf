// Registers the built-in transports. Imported for its side effect by index.ts.

import { registerBackend } from './registry';
import { inprocBackend } from './transports/inproc';
import { tcpBackend } from './transports/tcp';
import { tlsBackend } from './transports/tls';
import { wsBackend, wssBackend } from './transports/ws';

registerBackend('tcp', tcpBackend);
registerBackend('tls', tlsBackend);
registerBackend('ws', wsBackend);
registerBackend('wss', wssBackend);
registerBackend('inproc', inprocBackend);
