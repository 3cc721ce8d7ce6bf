import { decode } from '@msgpack/msgpack';
import {
  decodeMessage, encodeMessage, registerFamily, registerSerializer, registeredFamilies, SerializationError,
  toSerialize, UnknownSerializerError, unregisterFamily, unregisterSerializer, DeserializationError, type SerializerFamily, type SubHeader,
} from '../src';
import { roundTrip } from './helpers';

class Point {
  constructor(readonly x: number, readonly y: number, readonly tags: Map<string, Buffer> = new Map()) {}
}

describe('registerSerializer', () => {
  beforeAll(() => {
    registerSerializer(Point, {
      name: 'test.Point',
      serialize: (p) => ({ xy: new Float64Array([p.x, p.y]), tags: p.tags }),
      deserialize: (d: { xy: Float64Array; tags: Map<string, Buffer> }) => new Point(d.xy[0]!, d.xy[1]!, d.tags),
    });
  });
  afterAll(() => unregisterSerializer(Point));

  it('round-trips registered class instances through the dd family with their type name', () => {
    const p = new Point(1.5, -2, new Map([['t', Buffer.from('v')]]));
    const frames = encodeMessage({ p });
    expect(decode(frames[1]!)).toEqual({ serializer: 'dd', compression: expect.any(Array), count: expect.any(Number), type: 'class', name: 'test.Point' });
    const out = decodeMessage(frames) as { p: Point };
    expect(out.p).toBeInstanceOf(Point);
    expect(out.p.x).toBe(1.5);
    expect(Buffer.isBuffer(out.p.tags.get('t'))).toBe(true);
  });

  it('nests registered classes inside other values', () => {
    const out = roundTrip(new Map([[new Point(1, 2), [new Point(3, 4)]]]));
    const [k, v] = [...out][0]!;
    expect(k).toBeInstanceOf(Point);
    expect(v![0]).toBeInstanceOf(Point);
  });

  it('does not match subclasses', () => {
    class Point3 extends Point {}
    expect(() => encodeMessage(new Point3(1, 2))).toThrow(SerializationError);
  });

  it('a receiver without the registration gets a DeserializationError', () => {
    const frames = encodeMessage(new Point(1, 2));
    unregisterSerializer(Point);
    try {
      expect(() => decodeMessage(frames)).toThrow(DeserializationError);
    } finally {
      registerSerializer(Point, {
        name: 'test.Point',
        serialize: (p) => ({ xy: new Float64Array([p.x, p.y]), tags: p.tags }),
        deserialize: (d: { xy: Float64Array; tags: Map<string, Buffer> }) => new Point(d.xy[0]!, d.xy[1]!, d.tags),
      });
    }
  });

  it('turns a throwing deserialize into a DeserializationError', () => {
    class Fragile {}
    registerSerializer(Fragile, { name: 'test.Fragile', serialize: () => 1, deserialize: () => { throw new Error('nope'); } });
    try {
      expect(() => roundTrip(new Fragile())).toThrow(DeserializationError);
    } finally {
      unregisterSerializer(Fragile);
    }
  });
});

describe('registerFamily', () => {
  // A family for Points only, as raw float64 pairs: shows the family contract.
  const pointFamily: SerializerFamily = {
    serialize(value: unknown) {
      if (!(value instanceof Point)) return undefined;
      return { header: { kind: 'point' }, frames: [new Uint8Array(new Float64Array([value.x, value.y]).buffer)] };
    },
    deserialize(header: SubHeader, frames: Uint8Array[]) {
      if (header.kind !== 'point' || frames.length !== 1) throw new DeserializationError('bad point');
      const xy = new Float64Array(frames[0]!.slice().buffer);
      return new Point(xy[0]!, xy[1]!);
    },
  };

  beforeAll(() => registerFamily('test-points', pointFamily));
  afterAll(() => unregisterFamily('test-points'));

  it('lists built-in and user families', () => {
    expect(registeredFamilies()).toEqual(expect.arrayContaining(['msgpack', 'dd', 'test-points']));
  });

  it('is used when listed in serializers', () => {
    const frames = encodeMessage({ p: new Point(3, 4) }, { serializers: ['test-points', 'dd'] });
    expect(decode(frames[1]!)).toEqual({ serializer: 'test-points', compression: [null], count: 1, kind: 'point' });
    const out = decodeMessage(frames) as { p: Point };
    expect(out.p).toBeInstanceOf(Point);
    expect(out.p.y).toBe(4);
  });

  it('is used through Serialize', () => {
    const out = roundTrip(toSerialize(new Point(5, 6), ['test-points']));
    expect(out).toBeInstanceOf(Point);
  });

  it('refuses duplicate names unless overriding', () => {
    expect(() => registerFamily('dd', pointFamily)).toThrow(SerializationError);
  });

  it('refuses families that set reserved header fields', () => {
    registerFamily('test-bad', { serialize: () => ({ header: { count: 3 }, frames: [] }), deserialize: () => null });
    try {
      expect(() => encodeMessage(new Point(1, 1), { serializers: ['test-bad'] })).toThrow(SerializationError);
    } finally {
      unregisterFamily('test-bad');
    }
  });

  it('an unknown family on decode is an UnknownSerializerError', () => {
    const frames = encodeMessage({ p: new Point(3, 4) }, { serializers: ['test-points'] });
    unregisterFamily('test-points');
    try {
      expect(() => decodeMessage(frames)).toThrow(UnknownSerializerError);
    } finally {
      registerFamily('test-points', pointFamily);
    }
  });
});
