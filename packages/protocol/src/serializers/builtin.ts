// Registers the built-in families once, when the package is loaded.
import { ddFamily } from './dd-family';
import { findFamily, registerFamily } from './family';
import { msgpackFamily } from './msgpack-family';

if (findFamily('msgpack') === undefined) registerFamily('msgpack', msgpackFamily);
if (findFamily('dd') === undefined) registerFamily('dd', ddFamily);
