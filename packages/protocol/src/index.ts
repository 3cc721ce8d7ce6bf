export * from './errors';
export * from './frames';
