import { ProtocolError, checkTaskDependencies, dependencyRecords, taskDependencies } from '../src/index';

const A = 'tcp://10.0.0.1:1';
const B = 'tcp://10.0.0.2:2';

describe('compute-task dependencies (parallel arrays)', () => {
  test('built from the reference records: every key once, each holder once, records back unchanged', () => {
    const whoHas = { x: [A], y: [B, A] };
    const nbytes = { x: 8, y: 16, z: 32 }; // z: nobody else holds it
    const deps = taskDependencies(whoHas, nbytes);
    expect(deps).toEqual({ keys: ['x', 'y', 'z'], nbytes: [8, 16, 32], holders: [A, B], whoHas: [[0], [1, 0], []] });
    expect(dependencyRecords(deps)).toEqual({ whoHas, nbytes });
    expect(checkTaskDependencies(deps)).toBe(deps);
  });

  test('a key only in whoHas gets the default size; no dependencies give empty records', () => {
    expect(taskDependencies({ x: [A] }, {}, 1024)).toEqual({ keys: ['x'], nbytes: [1024], holders: [A], whoHas: [[0]] });
    expect(dependencyRecords(undefined)).toEqual({ whoHas: {}, nbytes: {} });
  });

  test.each([
    [null, 'expected {keys, nbytes, holders, whoHas}'],
    [[], 'expected {keys, nbytes, holders, whoHas}'],
    [{ keys: ['x'], nbytes: [8], holders: [] }, 'keys, nbytes, holders and whoHas must be arrays'],
    [{ keys: ['x', 'y'], nbytes: [8], holders: [], whoHas: [[], []] }, 'keys (2), nbytes (1) and whoHas (2) must have one entry per dependency'],
    [{ keys: [1], nbytes: [8], holders: [], whoHas: [[]] }, 'keys[0] is not a string'],
    [{ keys: ['x'], nbytes: [-1], holders: [], whoHas: [[]] }, 'nbytes[0] is not a size in bytes'],
    [{ keys: ['x'], nbytes: ['8'], holders: [], whoHas: [[]] }, 'nbytes[0] is not a size in bytes'],
    [{ keys: ['x'], nbytes: [8], holders: [7], whoHas: [[0]] }, 'holders must be addresses (strings)'],
    [{ keys: ['x'], nbytes: [8], holders: [A], whoHas: [0] }, 'whoHas[0] is not a list of holder indexes'],
    [{ keys: ['x'], nbytes: [8], holders: [A], whoHas: [[1]] }, 'whoHas[0] names holder 1 of 1'],
    [{ keys: ['x'], nbytes: [8], holders: [A], whoHas: [[0.5]] }, 'whoHas[0] names holder 0.5 of 1'],
  ])('malformed %j is refused: %s', (value, why) => {
    expect(() => checkTaskDependencies(value)).toThrow(ProtocolError);
    expect(() => checkTaskDependencies(value)).toThrow(`compute-task dependencies: ${why}`);
  });
});
