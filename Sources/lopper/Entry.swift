import LopperCLI

@main
struct Entry {
    static func main() async {
        BLASSetup.useVectorKernels()
        await Lopper.main()
    }
}
