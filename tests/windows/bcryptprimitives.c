/* A stand-in bcryptprimitives.dll for Debian's wine: Rust's Windows standard library gets
 * its randomness from ProcessPrng, which this wine does not export. Forward to
 * RtlGenRandom (advapi32's SystemFunction036), which it has. Test setup only. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
