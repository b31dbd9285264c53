/** This process's command line as the user typed it: `xbar …`, without the paths to Node and the program. */
export const typedCommand = (): string => ['xbar', ...process.argv.slice(2)].join(' ');
