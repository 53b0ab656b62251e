// One measured figure of `npm run bench`.
export interface BenchRow {
  name: string;
  backend: string;
  value: number;
  unit: string;
}
