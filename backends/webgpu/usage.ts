// The GPUBufferUsage and GPUMapMode bits the backend uses, as the numbers the WebGPU spec
// fixes (no dependence on the globals). A leaf module: device.ts, buffers.ts and profiler.ts
// share it without importing each other.
// Omits: the usages no buffer here needs (INDEX, VERTEX, INDIRECT, MAP_WRITE).

/** GPUBufferUsage bits. */
export const USAGE = { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, UNIFORM: 64, STORAGE: 128, QUERY_RESOLVE: 0x200 } as const;
/** GPUMapMode.READ (the mode of mapAsync; equal to USAGE.MAP_READ, a different enum). */
export const MAP_READ = 1;
