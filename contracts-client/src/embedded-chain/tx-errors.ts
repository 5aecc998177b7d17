import type { FailedTransactionMetadata } from 'litesvm';

/**
 * litesvm reports transaction errors as numbers (field-less variants) or small classes; a real
 * cluster sends them as serde JSON (`"AccountNotFound"`, `{"InstructionError":[0,{"Custom":1}]}`).
 * Clients (web3.js, spl-token) decode that JSON shape, so the chain converts at the edge.
 * The name tables follow litesvm 1.5's enum order.
 */
export type TransactionErrorJson = string | Record<string, unknown>;

const TX_FIELDLESS = [
  'AccountInUse',
  'AccountLoadedTwice',
  'AccountNotFound',
  'ProgramAccountNotFound',
  'InsufficientFundsForFee',
  'InvalidAccountForFee',
  'AlreadyProcessed',
  'BlockhashNotFound',
  'CallChainTooDeep',
  'MissingSignatureForFee',
  'InvalidAccountIndex',
  'SignatureFailure',
  'InvalidProgramForExecution',
  'SanitizeFailure',
  'ClusterMaintenance',
  'AccountBorrowOutstanding',
  'WouldExceedMaxBlockCostLimit',
  'UnsupportedVersion',
  'InvalidWritableAccount',
  'WouldExceedMaxAccountCostLimit',
  'WouldExceedAccountDataBlockLimit',
  'TooManyAccountLocks',
  'AddressLookupTableNotFound',
  'InvalidAddressLookupTableOwner',
  'InvalidAddressLookupTableData',
  'InvalidAddressLookupTableIndex',
  'InvalidRentPayingAccount',
  'WouldExceedMaxVoteCostLimit',
  'WouldExceedAccountDataTotalLimit',
  'MaxLoadedAccountsDataSizeExceeded',
  'ResanitizationNeeded',
  'InvalidLoadedAccountsDataSizeLimit',
  'UnbalancedTransaction',
  'ProgramCacheHitMaxLimit',
  'CommitCancelled',
] as const;

const IX_FIELDLESS = [
  'GenericError',
  'InvalidArgument',
  'InvalidInstructionData',
  'InvalidAccountData',
  'AccountDataTooSmall',
  'InsufficientFunds',
  'IncorrectProgramId',
  'MissingRequiredSignature',
  'AccountAlreadyInitialized',
  'UninitializedAccount',
  'UnbalancedInstruction',
  'ModifiedProgramId',
  'ExternalAccountLamportSpend',
  'ExternalAccountDataModified',
  'ReadonlyLamportChange',
  'ReadonlyDataModified',
  'DuplicateAccountIndex',
  'ExecutableModified',
  'RentEpochModified',
  'NotEnoughAccountKeys',
  'AccountDataSizeChanged',
  'AccountNotExecutable',
  'AccountBorrowFailed',
  'AccountBorrowOutstanding',
  'DuplicateAccountOutOfSync',
  'InvalidError',
  'ExecutableDataModified',
  'ExecutableLamportChange',
  'ExecutableAccountNotRentExempt',
  'UnsupportedProgramId',
  'CallDepth',
  'MissingAccount',
  'ReentrancyNotAllowed',
  'MaxSeedLengthExceeded',
  'InvalidSeeds',
  'InvalidRealloc',
  'ComputationalBudgetExceeded',
  'PrivilegeEscalation',
  'ProgramEnvironmentSetupFailure',
  'ProgramFailedToComplete',
  'ProgramFailedToCompile',
  'Immutable',
  'IncorrectAuthority',
  'AccountNotRentExempt',
  'InvalidAccountOwner',
  'ArithmeticOverflow',
  'UnsupportedSysvar',
  'IllegalOwner',
  'MaxAccountsDataAllocationsExceeded',
  'MaxAccountsExceeded',
  'MaxInstructionTraceLengthExceeded',
  'BuiltinProgramsMustConsumeComputeUnits',
  'BorshIoError',
] as const;

/** Errors the chain raises itself, before litesvm sees the transaction. */
export const BLOCKHASH_NOT_FOUND: TransactionErrorJson = 'BlockhashNotFound';
export const ALREADY_PROCESSED: TransactionErrorJson = 'AlreadyProcessed';
export const SIGNATURE_FAILURE: TransactionErrorJson = 'SignatureFailure';

function instructionErrorJson(err: unknown): unknown {
  if (typeof err === 'number') return IX_FIELDLESS[err] ?? 'GenericError';
  const obj = err as { code?: number; msg?: string };
  if (typeof obj.code === 'number') return { Custom: obj.code };
  if (typeof obj.msg === 'string') return { BorshIoError: obj.msg };
  return 'GenericError';
}

/** The serde JSON of a failed litesvm transaction's error. */
export function transactionErrorJson(failed: FailedTransactionMetadata): TransactionErrorJson {
  const err: unknown = failed.err();
  if (typeof err === 'number') return TX_FIELDLESS[err] ?? 'SanitizeFailure';
  const obj = err as { index?: number; accountIndex?: number; err?: () => unknown; constructor: { name: string } };
  if (typeof obj.err === 'function' && typeof obj.index === 'number') return { InstructionError: [obj.index, instructionErrorJson(obj.err())] };
  if (typeof obj.index === 'number') return { DuplicateInstruction: obj.index };
  if (typeof obj.accountIndex === 'number') {
    const name = obj.constructor.name.includes('Restricted') ? 'ProgramExecutionTemporarilyRestricted' : 'InsufficientFundsForRent';
    return { [name]: { account_index: obj.accountIndex } };
  }
  return 'SanitizeFailure';
}

const TX_MESSAGES: Record<string, string> = {
  AccountInUse: 'Account in use',
  AccountNotFound: 'Attempt to debit an account but found no record of a prior credit.',
  AlreadyProcessed: 'This transaction has already been processed',
  BlockhashNotFound: 'Blockhash not found',
  InsufficientFundsForFee: 'Insufficient funds for fee',
  InvalidAccountForFee: 'This account may not be used to pay transaction fees',
  ProgramAccountNotFound: 'Attempt to load a program that does not exist',
  SignatureFailure: 'Transaction did not pass signature verification',
  SanitizeFailure: 'Transaction failed to sanitize accounts offsets correctly',
};

/** The human text a real cluster puts after "Transaction simulation failed: ". */
export function transactionErrorMessage(err: TransactionErrorJson): string {
  if (typeof err === 'string') return TX_MESSAGES[err] ?? err;
  const ix = err['InstructionError'];
  if (Array.isArray(ix)) {
    const [index, inner] = ix as [number, unknown];
    const detail =
      typeof inner === 'object' && inner !== null && 'Custom' in inner
        ? `custom program error: 0x${(inner as { Custom: number }).Custom.toString(16)}`
        : JSON.stringify(inner);
    return `Error processing Instruction ${index}: ${detail}`;
  }
  if ('InsufficientFundsForRent' in err) {
    const at = (err['InsufficientFundsForRent'] as { account_index: number }).account_index;
    return `Transaction results in an account (${at}) with insufficient funds for rent`;
  }
  return JSON.stringify(err);
}
