// placeholder, replaced when @dd/scheduler and @dd/worker exist
export interface LocalClusterOptions {
  nWorkers?: number;
  threadsPerWorker?: number;
  processes?: boolean;
}
export class LocalCluster {
  static async start(_options: LocalClusterOptions = {}): Promise<LocalCluster> {
    throw new Error('not yet');
  }
  get schedulerAddress(): string {
    return '';
  }
  async close(): Promise<void> {}
}
