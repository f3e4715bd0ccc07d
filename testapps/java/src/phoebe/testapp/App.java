/*
 * phoebe test app: a small multi-threaded Java program for running the JVM under phoebe.
 *
 * Usage: java -jar phoebe-testapp.jar OUTFILE INPUT...
 *
 * A fixed pool of 4 threads reads each INPUT (Files.readAllBytes) and computes its CRC32. Results are
 * collected in input order, written to OUTFILE (one line per input: "<INPUT as given> <crc32, 8 lowercase
 * hex digits> <bytes>") and printed to stdout, followed by "total <bytes of all inputs>"; exit 0.
 *
 * Errors, on stderr with no stack trace, exit 1:
 *   error: cannot read <path>: <exception class simple name>: <message>   (first failing input, in order)
 *   error: cannot write <path>: <exception class simple name>: <message>
 * Usage error: "usage: java -jar phoebe-testapp.jar OUTFILE INPUT..." on stderr, exit 2.
 * Same inputs give byte-identical stdout and OUTFILE.
 */
package phoebe.testapp;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.CRC32;

public final class App {
    private static final int THREADS = 4;

    private record Result(String name, long crc, long bytes) {}

    private App() {}

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: java -jar phoebe-testapp.jar OUTFILE INPUT...");
            System.exit(2);
        }
        System.exit(run(args[0], List.of(args).subList(1, args.length)));
    }

    private static int run(String outFile, List<String> inputs) {
        List<Result> results = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            List<Future<Result>> futures = new ArrayList<>();
            for (String input : inputs) {
                futures.add(pool.submit(() -> checksum(input)));
            }
            for (int i = 0; i < inputs.size(); i++) {
                try {
                    results.add(futures.get(i).get());
                } catch (ExecutionException e) {
                    System.err.println("error: cannot read " + inputs.get(i) + ": " + describe(e.getCause()));
                    return 1;
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    System.err.println("error: interrupted while reading " + inputs.get(i));
                    return 1;
                }
            }
        } finally {
            pool.shutdownNow();
        }

        StringBuilder report = new StringBuilder();
        long total = 0;
        for (Result r : results) {
            report.append(r.name()).append(' ').append(String.format("%08x", r.crc()))
                    .append(' ').append(r.bytes()).append('\n');
            total += r.bytes();
        }
        try {
            Files.write(Path.of(outFile), report.toString().getBytes(StandardCharsets.UTF_8));
        } catch (IOException | RuntimeException e) {
            System.err.println("error: cannot write " + outFile + ": " + describe(e));
            return 1;
        }
        System.out.print(report);
        System.out.print("total " + total + "\n");
        System.out.flush();
        return 0;
    }

    private static Result checksum(String input) throws IOException {
        byte[] content = Files.readAllBytes(Path.of(input));
        CRC32 crc = new CRC32();
        crc.update(content);
        return new Result(input, crc.getValue(), content.length);
    }

    private static String describe(Throwable t) {
        return t.getClass().getSimpleName() + ": " + t.getMessage();
    }
}
