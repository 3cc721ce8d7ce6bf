// Cluster metadata (the reference's set_metadata / get_metadata): a tree of plain values on
// the scheduler, addressed by key paths (['a', 'b'] is metadata.a.b).

import { ExtensionKeyError, strList, type ExtensionMsg, type SchedulerExtension } from './extension';

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Nodes have no prototype, so paths such as ['__proto__'] are plain keys. */
function newNode(): Tree {
  return Object.create(null) as Tree;
}

export class MetadataExtension implements SchedulerExtension {
  readonly name = 'metadata';
  private root: Tree = newNode();

  readonly handlers = {
    'set-metadata': (m: ExtensionMsg) => {
      const keys = strList(m, 'keys', 'set-metadata');
      if (keys.length === 0) {
        if (!isTree(m['value'])) throw new TypeError('set-metadata: at the root the value must be a plain object');
        this.root = Object.assign(newNode(), m['value'] as Tree);
        return null;
      }
      let node = this.root;
      for (const k of keys.slice(0, -1)) {
        const next = node[k];
        if (!isTree(next)) node[k] = newNode();
        node = node[k] as Tree;
      }
      node[keys[keys.length - 1]!] = m['value'];
      return null;
    },
    'get-metadata': (m: ExtensionMsg) => {
      const keys = strList(m, 'keys', 'get-metadata');
      let node: unknown = this.root;
      for (const k of keys) {
        if (!isTree(node) || !Object.prototype.hasOwnProperty.call(node, k)) {
          if ('default' in m) return m['default'];
          throw new ExtensionKeyError(`no metadata at ${JSON.stringify(keys)}`);
        }
        node = node[k];
      }
      return node;
    },
  };
}
