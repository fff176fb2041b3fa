import LopperCLI

Lopper.main()
