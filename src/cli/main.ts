export function main(argv: string[]): Promise<number> { void argv; return Promise.resolve(0); }
