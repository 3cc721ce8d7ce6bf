// Public surface of @dd/protocol.

export * from './errors';
export { checkSendable, MAX_SENDABLE_DEPTH } from './sendable';
export * from './frames';

export { encodeMessage, decodeMessage, MAX_PAYLOAD_NESTING } from './message';
export {
  type EncodeOptions,
  type DecodeOptions,
  type CompressionName,
  DEFAULT_SPLIT_SIZE,
  DEFAULT_SERIALIZERS,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
} from './message-options';
export { PLACEHOLDER_KEY } from './msgpack-codec';
export { Serialize, toSerialize } from './serialize-wrapper';

export {
  registerFamily,
  unregisterFamily,
  registeredFamilies,
  RESERVED_HEADER_FIELDS,
  type RegisterFamilyOptions,
  type SerializerFamily,
  type SerializedPayload,
  type SerializeContext,
  type DeserializeContext,
  type SubHeader,
} from './serializers/family';
export { registerSerializer, unregisterSerializer, type ClassSerializer } from './serializers/class-registry';

export {
  registerCompression,
  availableCompressions,
  MIN_COMPRESS_BYTES,
  MAX_COMPRESSED_RATIO,
  type CompressionCodec,
} from './compression';
export * from './messages';
export * from './task-spec';
export * from './units';

export { tokenize, keyFor, canonicalText } from './tokenize';
export { keySplit, keyGroup } from './keys';
export { TransitionLog } from './transition-log';
export { clearIfAny, ownSet, sharedEmptySet } from './shared-empty-set';
export { taskDependencies, dependencyRecords, checkTaskDependencies } from './task-dependencies';
