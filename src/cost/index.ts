/** The hardware cost model: energy, delay and area of a transformer on crossbars. */
export * from './components.js';
export * from './cost.js';
export * from './mapping.js';
export * from './report.js';
export * from './shape.js';
