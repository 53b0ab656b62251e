// The GPU.js modes this project runs (a leaf module: the loader and the GPU.js backend both
// read it, so neither imports the other for it).

export type GpujsMode = 'headlessgl' | 'webgpu' | 'webasm' | 'cpu';
export const GPUJS_MODES: readonly GpujsMode[] = ['headlessgl', 'webgpu', 'webasm', 'cpu'];
